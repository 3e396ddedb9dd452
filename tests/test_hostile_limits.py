"""Caps on what one input may cost (issue 20): size, total, and the work it causes.

Measured on the real code, with memory taken from the kernel's own count
(ru_maxrss of a child process), not estimated.
"""

import gzip
import json
import os
import subprocess
import sys
import time
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest

from support import REPO

ENV = dict(os.environ, PYTHONPATH=REPO)
KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO5j2lnT1qR7/lpXRlCfui2BILCHMsFxcyVGD4ENC2q6 a@b"
MEASURE = ("import resource, subprocess, sys\n"
           "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
           "sys.stderr.write(r.stderr)\n"
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
           "sys.exit(r.returncode)\n")


def measured_agent(root, conf, timeout=120):
    """(CompletedProcess, peak RSS in MiB) of one agent run."""
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-c", MEASURE, sys.executable, "-m", "guestagent",
                          "--once", "--root", str(root), "--config", str(conf)],
                         env=ENV, capture_output=True, text=True, timeout=timeout)
    res.took = time.monotonic() - t0
    return res, int(res.stdout.strip().splitlines()[-1]) / 1024


def drive(tmp_path, meta, files=None, extra_conf=""):
    top = tmp_path / "drive"
    base = top / "openstack/latest"
    base.mkdir(parents=True)
    meta = {"uuid": "u-1", "hostname": "demo", "public_keys": {"a": KEY_A}, **meta}
    for name, data in (files or {}).items():
        p = top / "openstack/content" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    (base / "meta_data.json").write_text(json.dumps(meta))
    conf = tmp_path / "agent.conf"
    conf.write_text(f"[main]\ndatasources = configdrive\ndefault_user = debian\n"
                    f"[configdrive]\npath = {top}\n[ssh]\nregenerate_host_keys = no\n"
                    + extra_conf)
    return conf


# -- passwords: SHA-512 crypt's work grows with the square of the length ------------

@pytest.mark.parametrize("password", ["x" * 512, "x" * 40000, "é" * 300, "p" * 1_000_000])
def test_an_over_long_admin_pass_is_refused_quickly_and_cheaply(tmp_path, root, password):
    conf = drive(tmp_path, {"admin_pass": password})
    res, rss = measured_agent(root, conf)
    assert "Traceback" not in res.stderr, res.stderr
    assert "refusing admin_pass" in res.stderr and "511 bytes" in res.stderr, res.stderr
    assert rss < 150, f"peak RSS {rss:.0f} MiB"
    assert res.took < 30
    assert KEY_A in (root / "home/debian/.ssh/authorized_keys").read_text()
    assert "debian:!" in (root / "etc/shadow").read_text() or \
        "debian:*" in (root / "etc/shadow").read_text()


def test_the_longest_accepted_password_still_hashes_right():
    from guestagent.accounts.passwd_hash import MAX_PASSWORD, sha512_crypt, verify
    pw = "k" * MAX_PASSWORD
    h = sha512_crypt(pw, "saltsalt")
    assert verify(pw, h) and not verify(pw[:-1], h)
    for bad in ("k" * (MAX_PASSWORD + 1), "é" * (MAX_PASSWORD // 2 + 1)):
        with pytest.raises(ValueError):
            sha512_crypt(bad)


def test_the_cap_is_libxcrypts_and_hashes_below_it_agree_with_the_system():
    """libxcrypt (the system's crypt(3)) hashes up to 511 bytes and refuses more."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import crypt
        except ImportError:
            pytest.skip("no crypt module (Python 3.13+)")
    from guestagent.accounts.passwd_hash import MAX_PASSWORD, sha512_crypt
    for n in (300, MAX_PASSWORD):
        assert sha512_crypt("q" * n, "abcdefgh") == crypt.crypt("q" * n, "$6$abcdefgh")
    assert not crypt.crypt("q" * (MAX_PASSWORD + 1), "$6$abcdefgh").startswith("$6$")


# -- injected files: one budget for the whole drive ---------------------------------

@pytest.mark.parametrize("layout", ["one content named 12 times", "12 distinct contents",
                                    "200 entries"])
def test_injected_files_share_one_byte_budget(tmp_path, root, layout):
    mib = 1 << 20
    if layout == "one content named 12 times":
        files = {"0000": b"a" * (3 * mib)}
        entries = [{"path": f"/etc/f{i}", "content_path": "/content/0000"} for i in range(12)]
    elif layout == "12 distinct contents":
        files = {f"{i:04d}": bytes([65 + i]) * mib for i in range(12)}
        entries = [{"path": f"/etc/f{i}", "content_path": f"/content/{i:04d}"}
                   for i in range(12)]
    else:
        files = {"0000": b"small\n"}
        entries = [{"path": f"/etc/f{i}", "content_path": "/content/0000"}
                   for i in range(200)]
    conf = drive(tmp_path, {"files": entries}, files, "[userdata]\nmax_bytes = 4194304\n")
    res, rss = measured_agent(root, conf)
    assert "Traceback" not in res.stderr, res.stderr
    written = sorted(p.name for p in (root / "etc").glob("f*"))
    total = sum((root / "etc" / n).stat().st_size for n in written)
    assert total <= 4 * mib
    assert rss < 150, f"peak RSS {rss:.0f} MiB"
    refusals = [ln for ln in res.stderr.splitlines()
                if "ignoring injected file" in ln or "ignoring files[" in ln]
    assert len(refusals) == 1, refusals  # one refusal, naming the files it covers
    if layout == "200 entries":
        assert len(written) == 100 and "at most 100" in res.stderr
    else:
        assert 1 <= len(written) < 12
        assert "more than 4194304 bytes in all" in refusals[0]


# -- nested gzip and MIME: the work is capped, and so is the noise ----------------------

def _mime(parts):
    msg = MIMEMultipart()
    for p in parts:
        if isinstance(p, bytes):
            from email.mime.application import MIMEApplication
            msg.attach(MIMEApplication(p, "gzip"))
        else:
            msg.attach(MIMEText(p, "x-shellscript"))
    return msg.as_bytes()


def _bombs(kind):
    big = gzip.compress(b"#!/bin/sh\n" + b"#" * (8 << 20), 9)
    if kind == "wide":
        level2 = gzip.compress(_mime([big] * 12), 9)
        return gzip.compress(_mime([level2] * 12), 9)
    if kind == "deep":
        blob = gzip.compress(b"#!/bin/sh\necho deepest\n")
        for _ in range(12):
            blob = gzip.compress(_mime([blob] * 3), 9)
        return blob
    if kind == "many small":
        inner = gzip.compress(_mime(["#!/bin/sh\necho x\n"] * 40), 9)
        return _mime([inner] * 40)
    return gzip.compress(gzip.compress(gzip.compress(b"#!/bin/sh\n" + b"#" * (64 << 20))))


@pytest.mark.parametrize("kind", ["wide", "deep", "many small", "gzip in gzip"])
def test_nested_user_data_costs_bounded_work_and_few_warnings(kind):
    from guestagent.userdata.parts import split
    data = _bombs(kind)
    assert len(data) < 200_000
    t0 = time.monotonic()
    parts = split(data, 16 << 20)
    took = time.monotonic() - t0
    assert took < 5, f"{kind}: {took:.1f} s"
    assert len(parts.warnings) <= 5, parts.warnings[:10]
    assert parts.total <= 16 << 20


@pytest.mark.parametrize("field", ["plain_text_passwd", "passwd"])
def test_an_over_long_cloud_config_password_costs_only_that_user(root, field):
    from guestagent.runner import _run_step
    from guestagent.steps import load

    from support.step_context import StepContext
    value = "z" * 40000 if field == "plain_text_passwd" else "$6$salt$" + "a" * 40000
    cc = {"users": [{"name": "mallory", field: value, "lock_passwd": False},
                    {"name": "alice", "ssh_authorized_keys": [KEY_A]}]}
    t0 = time.monotonic()
    res = _run_step(StepContext(root, cloud_config=cc), load("users"))
    assert time.monotonic() - t0 < 20
    shadow = (root / "etc/shadow").read_text()
    assert "z" * 100 not in shadow and "a" * 100 not in shadow
    assert KEY_A in (root / "home/alice/.ssh/authorized_keys").read_text(), res
