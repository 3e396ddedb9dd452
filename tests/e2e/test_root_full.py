"""An image whose root filesystem ships full, on real boots (issue 29, part 2).

The default image (Debian 12, systemd, ext4 on virtio) is built, then its
root is filled to the last block, root's reserve too (``harness.fill_root``:
``tune2fs -r 0`` and ``fallocate``), so that nothing at all can be written
to / until it grows.  Booted from a config drive:

  root-full-grows        on the usual 3 GiB disk (twice the image): the agent
                         grows the root before it writes anything, and the
                         boot completes: the key logs in, the root spans the
                         disk, status says growroot ran first
  root-full-cannot-grow  on a disk the image's own size: nothing can be
                         written; the console says in plain words what failed
                         and why ("no space left on /"), the run ends, no
                         file the agent touched is truncated

Logs: /var/tmp/guestagent-e2e-logs/<scenario>/.
"""

import os
import re
import time
import uuid

import pytest
from checks import DISK, check_root_grown, check_sudo, status, write_instance

import harness

pytestmark = [pytest.mark.e2e, pytest.mark.root]

MATRIX = {
    "root-full-grows": dict(image={}, ci=True, grows=True),
    "root-full-cannot-grow": dict(image={}, ci=False, grows=False),
}

GROW_FIRST = "growing it before anything else is written"
STILL_FULL = "no space left on /: what failed above for it is not done"
EARLY_WRITERS = ("systemd-random-seed.service", "systemd-update-utmp.service")


@pytest.fixture(scope="class", params=sorted(MATRIX))
def full_guest(request, deb, keys, e2e_dir):
    name = request.param
    spec = MATRIX[name]
    d = e2e_dir / name
    image = harness.build_image(d / "image", deb, "plain", root_key=keys["debug"] + ".pub")
    free = harness.fill_root(image)
    assert free == 0, f"the image's root still has {free} bytes free"
    u = str(uuid.uuid4())
    tree = write_instance(d / "drive", u, "full-root.novalocal",
                          [harness.public_key(keys["user"])])
    iso = harness.config_drive_iso(tree, d / "config-2.iso")
    size = DISK if spec["grows"] else str(image.size)
    with harness.Guest(image, d / "vm", name, key=keys["user"], root_key=keys["debug"],
                       config_drive=iso, disk_size=size, instance_uuid=u) as g:
        g.scenario, g.grows = name, spec["grows"]
        if spec["grows"]:
            g.wait_ssh()
            g.report_boot()
            g.settle()
        else:
            wait_console(g, "local stage finished")
        yield g


def wait_console(guest, text, timeout=None):
    timeout = timeout or float(os.environ.get("GUESTAGENT_E2E_BOOT_TIMEOUT", "420"))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in guest.console_text():
            guest.time_to_ssh = time.monotonic() - guest.started
            print(f"[e2e] {guest.name}: {text!r} on the console after "
                  f"{guest.time_to_ssh:.1f} s", flush=True)
            return
        if guest.qemu.poll() is not None:
            guest.fail(f"QEMU exited ({guest.qemu.returncode})")
        time.sleep(2)
    guest.fail(f"{text!r} never appeared on the console within {timeout:.0f} s")


def agent_lines(guest):
    text = guest.console_text().replace("\r", "")
    return [ln for ln in text.splitlines() if "guestagent: " in ln]


class TestRootFull:
    def test_grown_before_anything_written_and_the_boot_completes(self, full_guest):
        if not full_guest.grows:
            pytest.skip("the disk cannot grow in this scenario")
        lines = agent_lines(full_guest)
        first = next(i for i, ln in enumerate(lines) if GROW_FIRST in ln)
        found = next(i for i, ln in enumerate(lines) if "found instance" in ln)
        assert first < found, "\n".join(lines)
        text = "\n".join(lines)
        assert "no space left" not in text, text
        assert "Traceback" not in full_guest.console_text()
        check_root_grown(full_guest)
        check_sudo(full_guest)
        assert full_guest.ssh("hostname").stdout.strip() == "full-root"
        st = status(full_guest)
        local = next(r for r in st["runs"] if r["stage"] == "local")
        grow = next(s for s in local["steps"] if s["name"] == "growroot")
        assert grow.get("before_anything_else") is True and grow["result"] == "changed", grow
        failed = [s for r in st["runs"] for s in r["steps"] if s["result"] == "failed"]
        assert not failed, failed
        assert all(r["exit_code"] == 0 for r in st["runs"]), st["runs"]
        log = full_guest.ssh("sudo -n cat /var/log/guestagent.log").stdout
        assert "found instance" in log
        left = full_guest.ssh("sudo -n find / -xdev -name '*.guestagent-new'").stdout
        assert not left.strip(), left
        # systemd's own early writers failed before the root grew; the agent
        # started them again once it had, and says so
        failed_units = full_guest.failed_services()
        print(f"[e2e] {full_guest.name}: failed units after the boot: {failed_units}\n"
              + text, flush=True)
        for unit in EARLY_WRITERS:
            assert not any(unit in u for u in failed_units), failed_units
        again = [ln for ln in lines if "before the root grew" in ln]
        assert all("started again" in ln for ln in again), again

    def test_cannot_grow_says_why_and_ends(self, full_guest):
        if full_guest.grows:
            pytest.skip("the disk grows in this scenario")
        lines = agent_lines(full_guest)
        text = "\n".join(lines)
        assert "Traceback" not in full_guest.console_text()
        assert "[Errno 28]" not in text, text
        assert STILL_FULL in text, text
        users = [ln for ln in lines if "users failed" in ln]
        key_in = not users
        if users:  # the key could not go in: the console says why, in one line
            assert "no space left on /" in users[0], users
        else:
            full_guest.wait_ssh()
        # the run ended once (no loop): one local stage, and no more runs later
        finished = [ln for ln in lines if re.search(r"(local|network) stage finished", ln)]
        assert len(finished) == 1, finished
        time.sleep(20)
        assert len([ln for ln in agent_lines(full_guest)
                    if re.search(r"stage finished", ln)]) == 1
        print(f"[e2e] {full_guest.name}: key {'in' if key_in else 'not in'}; "
              f"the agent's lines:\n" + text, flush=True)
        # what the image shipped is whole: the debug root login (baked into
        # the test image) shows status, and that no temp file stayed
        try:
            full_guest.wait_ssh(user="root", key=full_guest.root_key, timeout=120, boot=False)
        except AssertionError:
            pytest.skip("sshd is not up either (no room for host keys): the console said why")
        res = full_guest.ssh("guestagent status; echo exit=$?", user="root",
                             key=full_guest.root_key, check=False)
        assert "exit=0" not in res.stdout, res.stdout + res.stderr
        left = full_guest.ssh("find / -xdev -name '*.guestagent-new'", user="root",
                              key=full_guest.root_key, check=False).stdout
        assert not left.strip(), left
        hostname = full_guest.ssh("cat /etc/hostname", user="root",
                                  key=full_guest.root_key).stdout
        assert hostname.strip(), "the image's /etc/hostname was emptied"
        # systemd's early writers that failed for want of space: the agent's
        # lines name each one (started again, or failed for the same reason)
        failed_units = full_guest.ssh("systemctl --failed --plain --no-legend", user="root",
                                      key=full_guest.root_key, check=False).stdout
        print(f"[e2e] {full_guest.name}: failed units: {failed_units}", flush=True)
        for unit in EARLY_WRITERS:
            if unit in failed_units:
                assert any(unit in ln for ln in agent_lines(full_guest)), (unit, text)
