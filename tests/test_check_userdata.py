"""guestagent check-userdata FILE: the boot's decoder, said part by part; no side effects."""

import gzip
import json
import os
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText


def check(run_agent, tmp_path, data, *extra):
    f = tmp_path / "user-data"
    f.write_bytes(data if isinstance(data, bytes) else data.encode())
    return run_agent("check-userdata", f, *extra)


def test_everything_acted_on_exits_0(run_agent, tmp_path):
    res = check(run_agent, tmp_path, "#cloud-config\nhostname: web-1\nruncmd: [ls]\n")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "hostname" in res.stdout and "will do" in res.stdout
    assert "step runcmd, once per instance, final stage" in res.stdout
    assert res.stdout.rstrip().endswith("(exit 0)")


def test_ignored_by_design_is_said_plainly_and_exits_0(run_agent, tmp_path):
    res = check(run_agent, tmp_path, "#cloud-config\nnetwork: {version: 2}\n"
                "instance-id: i-1\nlocal-hostname: h\ndatasource: {OpenStack: {}}\n")
    assert res.returncode == 0, res.stdout
    for key in ("network", "instance-id", "local-hostname", "datasource"):
        line = next(ln for ln in res.stdout.splitlines() if ln.strip().startswith(key))
        assert "ignored" in line and "cloud-init" in line


def test_autoinstall_is_ignored_by_design_not_unsupported(run_agent, tmp_path):
    """Only Ubuntu's live installer acts on autoinstall; cloud-init's
    cc_ubuntu_autoinstall skips it on an installed system."""
    res = check(run_agent, tmp_path, "#cloud-config\nautoinstall:\n  version: 1\n"
                "  identity: {hostname: h, username: u, password: x}\nruncmd: [ls]\n")
    assert res.returncode == 0, res.stdout
    line = next(ln for ln in res.stdout.splitlines() if ln.strip().startswith("autoinstall"))
    assert "ignored" in line and "live-server installer" in line
    assert "unsupported" not in res.stdout


def test_unsupported_unknown_and_invalid_exit_1_with_reasons(run_agent, tmp_path):
    res = check(run_agent, tmp_path, "#cloud-config\nchef: {}\nhostnmae: x\nhostname: [a]\n"
                "users: [{name: bob, frobnicate: 1}]\n")
    assert res.returncode == 1
    out = res.stdout
    assert "chef" in out and "cloud-init acts on this key; guestagent does not" in out
    assert "hostnmae" in out and "neither guestagent nor cloud-init knows this key" in out
    assert "expected a string, got a list" in out
    assert "partly" in out and "frobnicate" in out
    assert "not fully handled (exit 1)" in out


def test_json_report(run_agent, tmp_path):
    res = check(run_agent, tmp_path, "#cloud-config\nhostname: a\nchef: {}\n", "--json")
    assert res.returncode == 1
    report = json.loads(res.stdout)
    assert report["exit_code"] == 1 and report["fully_handled"] is False
    verdicts = {k["key"]: k["verdict"] for k in report["keys"]}
    assert verdicts == {"hostname": "do", "chef": "unsupported"}
    assert report["parts"] == [{"part": 1, "type": "text/cloud-config",
                                "what": "#cloud-config"}]


def test_parts_gzip_and_mime_are_said_part_by_part(run_agent, tmp_path):
    m = MIMEMultipart()
    m.attach(MIMEText("#!/bin/sh\necho hi\n", "x-shellscript"))
    m.attach(MIMEText("#cloud-config\nruncmd: [ls]\n", "cloud-config"))
    m.attach(MIMEText("#include\nhttp://example.org/x\n", "plain"))
    res = check(run_agent, tmp_path, gzip.compress(m.as_bytes()))
    assert res.returncode == 1  # #include is not supported
    out = res.stdout
    assert "part 1: script 'part-001': run once per instance, in the final stage" in out
    assert "part 2: #cloud-config" in out
    assert "part 3: #include (text/x-include-url): not supported, skipped" in out


def test_header_after_blank_lines_and_in_any_case(run_agent, tmp_path):
    res = check(run_agent, tmp_path, "\n  \n#Cloud-Config\nhostname: a\n")
    assert res.returncode == 0, res.stdout


def test_unreadable_file_exits_2(run_agent, tmp_path):
    res = run_agent("check-userdata", tmp_path / "missing")
    assert res.returncode == 2 and "cannot read" in res.stderr


def test_no_side_effects(run_agent, tmp_path):
    """Nothing in the file runs: not the script, not runcmd, not write_files."""
    marker = tmp_path / "ran"
    m = MIMEMultipart()
    m.attach(MIMEText(f"#!/bin/sh\ntouch {marker}\n", "x-shellscript"))
    m.attach(MIMEText(f"#cloud-config\nruncmd: [touch {marker}]\nbootcmd: [touch {marker}]\n"
                      f"write_files: [{{path: {marker}, content: x}}]\n", "cloud-config"))
    before = sorted(os.listdir(tmp_path))
    res = check(run_agent, tmp_path, m.as_bytes())
    assert res.returncode == 0, res.stdout
    assert not marker.exists()
    assert sorted(os.listdir(tmp_path)) == sorted(before + ["user-data"])
