"""User-data scripts, runcmd and bootcmd, through the real agent on a scratch root."""

import gzip
import os
import stat
import time
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest

from support.userdata_helpers import Drive


@pytest.fixture
def drive(tmp_path, run_agent, root):
    return Drive(tmp_path, run_agent, root)


def script(body, shebang="#!/bin/sh"):
    return f"{shebang}\n{body}\n"


def mime(*parts):
    m = MIMEMultipart()
    for text, subtype in parts:
        # utf-8: base64 transfer encoding, which keeps \r\n as written
        m.attach(MIMEText(text, subtype, "utf-8" if "\r" in text else "us-ascii"))
    return m.as_bytes()


def test_plain_script_runs_once_per_instance(drive, tmp_path):
    marker = tmp_path / "ran"
    drive.user_data(script(f'echo "run $$ in $(pwd) root=$GUESTAGENT_ROOT"; '
                           f'echo x >> {marker}; echo to-stderr >&2'))
    res = drive.run()
    assert res.returncode == 0, res.stderr
    assert marker.read_text() == "x\n"
    # the output goes to the console (our stderr) and the 0600 log inside the root
    assert f"in {drive.root} root={drive.root}" in res.stderr
    assert "to-stderr" in res.stderr
    logf = drive.root / "var/log/guestagent-user-data.log"
    assert stat.S_IMODE(logf.stat().st_mode) == 0o600
    assert f"in {drive.root} root={drive.root}" in drive.log and "to-stderr" in drive.log
    step = drive.step("scripts")
    assert step["result"] == "changed"
    [change] = step["changes"]
    assert change.startswith("script 'part-001' exited 0 in ")

    # the same instance again: not rerun
    res = drive.run()
    assert res.returncode == 0, res.stderr
    assert marker.read_text() == "x\n"
    assert drive.step("scripts")["result"] == "done-before"

    # a new instance id: run again
    drive.set_instance_id("iid-userdata-2")
    res = drive.run()
    assert marker.read_text() == "x\nx\n"
    assert drive.step("scripts")["result"] == "changed"


def test_scripts_live_0700_in_a_root_only_directory(drive):
    drive.user_data(script("true"))
    drive.run()
    d = next((drive.root / "var/lib/guestagent/instances").glob("*/scripts"))
    assert d.parent.name == "iid-userdata-1"
    for p in (d, d.parent, d.parent.parent, d.parent.parent.parent):
        assert p.stat().st_uid == 0 and stat.S_IMODE(p.stat().st_mode) & 0o077 == 0, p
    f = d / "part-001"
    assert stat.S_IMODE(f.stat().st_mode) == 0o700 and f.read_text() == "#!/bin/sh\ntrue\n"


def test_mime_scripts_run_in_order_and_a_failure_does_not_stop_the_next(drive, tmp_path):
    order = tmp_path / "order"
    drive.user_data(mime(
        (script(f"echo one >> {order}"), "x-shellscript"),
        ("#cloud-config\nruncmd:\n - echo runcmd >> " + str(order) + "\n", "cloud-config"),
        (script(f"echo two >> {order}; exit 3"), "x-shellscript"),
        (script(f"print('three', file=open('{order}', 'a'))", "#!/usr/bin/env python3"),
         "x-shellscript"),
        ("http://example.com/x", "x-include-url"),
    ))
    res = drive.run()
    assert order.read_text() == "one\ntwo\nthree\nruncmd\n"
    assert res.returncode == 1  # a step failed: the exit code says so
    assert "text/x-include-url" in res.stderr
    step = drive.step("scripts")
    assert step["result"] == "failed"
    err = step["error"]
    assert "1 of 3 user-data scripts failed" in err
    assert "script 'part-003' exited 3" in err
    assert "/var/log/guestagent-user-data.log" in err
    # the scripts that ran well are the failed step's changes: status shows both
    assert [c.split(" in ")[0] for c in step["changes"]] == [
        "script 'part-001' exited 0", "script 'part-004' exited 0"]
    shown = drive._run_agent("status", "--root", drive.root).stdout
    assert "changed: script 'part-001' exited 0 in " in shown, shown
    assert drive.step("runcmd")["result"] == "changed"
    assert "=== script 'part-003' exited 3" in drive.log
    # a failed script is still once per instance: the next boot does not rerun it
    res = drive.run()
    assert res.returncode == 0, res.stderr
    assert order.read_text() == "one\ntwo\nthree\nruncmd\n"
    assert drive.step("scripts")["result"] == "done-before"


def test_gzipped_script(drive, tmp_path):
    drive.user_data(gzip.compress(script(f"echo gz > {tmp_path}/gz").encode()))
    drive.run()
    assert (tmp_path / "gz").read_text() == "gz\n"


def test_part_without_shebang_and_binary_junk_run_nothing(drive, tmp_path):
    drive.user_data(mime((f"touch {tmp_path}/bad", "x-shellscript")))
    res = drive.run()
    assert "does not start with #!" in res.stderr
    assert not (tmp_path / "bad").exists()
    assert drive.step("scripts")["result"] == "skipped"

    drive.set_instance_id("iid-junk")
    drive.user_data(os.urandom(64) + b"\0\x01\x02")
    res = drive.run()
    assert res.returncode == 0, res.stderr
    assert "binary data" in res.stderr
    assert drive.step("scripts")["reason"] == "user-data has no scripts"


def test_missing_interpreter_and_dos_line_endings_are_explained(drive):
    drive.user_data(mime((script("true", "#!/no/such/interpreter"), "x-shellscript"),
                         ("#!/bin/sh\r\ntrue\r\n", "x-shellscript"),
                         (script("echo still runs"), "x-shellscript")))
    res = drive.run()
    err = drive.step("scripts")["error"]
    assert "2 of 3" in err
    assert "'part-001' could not be started: interpreter '/no/such/interpreter' not found" in err
    assert "'part-002' could not be started: its #! line ends in a carriage return" in err
    assert "still runs" in res.stderr


def test_timeout_kills_the_process_group(drive, tmp_path):
    pidfile = tmp_path / "child.pid"
    drive.user_data(mime(
        (script(f"sleep 60 & echo $! > {pidfile}; echo started; wait"), "x-shellscript"),
        (script(f"echo next > {tmp_path}/next"), "x-shellscript")))
    t0 = time.monotonic()
    res = drive.run(userdata={"script_timeout": "1"})
    assert time.monotonic() - t0 < 20
    err = drive.step("scripts")["error"]
    assert "script 'part-001' timed out after 1 s and was killed" in err
    assert (tmp_path / "next").read_text() == "next\n"
    assert "started" in res.stderr
    child = int(pidfile.read_text())
    for _ in range(50):  # the background sleep went with its group
        if not os.path.exists(f"/proc/{child}") or \
                open(f"/proc/{child}/stat").read().split()[2] == "Z":
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the script's child survived the timeout")


def test_background_daemon_does_not_hold_up_the_agent(drive, tmp_path):
    pidfile = tmp_path / "daemon.pid"
    drive.user_data(script(f"(sleep 1; echo late-output) & echo $! > {pidfile}; echo quick"))
    t0 = time.monotonic()
    drive.run()
    assert time.monotonic() - t0 < 30
    assert drive.step("scripts")["result"] == "changed"
    time.sleep(1.5)
    assert "late-output" in drive.log  # still writing to the log, not killed by SIGPIPE


def test_runcmd_strings_and_argv_lists(drive, tmp_path):
    out = tmp_path / "runcmd.out"
    drive.user_data(f"""#cloud-config
runcmd:
  - echo "shell $((1+2))" > {out}
  - [sh, -c, 'printf "%s|" "$@" >> {out}', argv0, "two words", "it's", "$HOME", 5]
  - "false"
  - false
  - echo after-false >> {out}
""")
    res = drive.run()
    assert res.returncode == 0, res.stderr
    # a bare YAML false is a boolean, not the command: said, and left out
    assert "runcmd entry 4 is true/false, not a command" in res.stderr
    assert out.read_text() == "shell 3\ntwo words|it's|$HOME|5|after-false\n"
    [change] = drive.step("runcmd")["changes"]
    assert change.startswith("runcmd (4 commands) exited 0 in ")
    generated = next((drive.root / "var/lib/guestagent/instances").glob("*/scripts/runcmd"))
    assert stat.S_IMODE(generated.stat().st_mode) == 0o700
    drive.run()
    assert drive.step("runcmd")["result"] == "done-before"
    assert out.read_text().count("shell 3") == 1


def test_runcmd_failure_is_a_failed_step(drive):
    drive.user_data("#cloud-config\nruncmd:\n  - exit 7\n")
    res = drive.run()
    assert res.returncode == 1
    step = drive.step("runcmd")
    assert step["result"] == "failed"
    assert step["error"].startswith("runcmd (1 command) exited 7 in ")


def test_bootcmd_runs_every_boot_first(drive, tmp_path):
    out = tmp_path / "boot.out"
    drive.user_data(f"""#cloud-config
bootcmd:
  - echo "boot $INSTANCE_ID" >> {out}
  - [sh, -c, 'test ! -e {drive.root}/etc/sudoers.d/90-guestagent-users || echo late >> {out}']
runcmd:
  - echo runcmd >> {out}
""")
    drive.run()
    assert out.read_text() == "boot iid-userdata-1\nruncmd\n"
    steps = [s["name"] for s in drive.status()["last"]["steps"]]
    # only random_seed (the kernel's pool, before anything makes keys) and
    # machine_id (before the network starts) are earlier
    assert [s for s in steps if s not in ("random_seed", "machine_id")][0] == "bootcmd"
    assert drive.step("bootcmd")["changes"][0].startswith("bootcmd (2 commands) exited 0")
    drive.run()
    drive.run()
    # later boots: the users step of the first boot left its sudoers file
    assert out.read_text() == ("boot iid-userdata-1\nruncmd\n"
                               + "boot iid-userdata-1\nlate\n" * 2)


def test_userdata_disabled_runs_nothing(drive, tmp_path):
    drive.user_data(mime((script(f"touch {tmp_path}/s"), "x-shellscript"),
                         (f"runcmd: [touch {tmp_path}/r]\nbootcmd: [touch {tmp_path}/b]\n"
                          f"write_files: [{{path: /etc/w, content: x}}]\n", "cloud-config")))
    res = drive.run(userdata={"enabled": "no"})
    assert res.returncode == 0, res.stderr
    for name in ("s", "r", "b"):
        assert not (tmp_path / name).exists()
    assert not (drive.root / "etc/w").exists()
    for name in ("bootcmd", "write_files", "scripts", "runcmd"):
        assert drive.step(name)["result"] == "skipped"
        assert "[userdata] enabled = no" in drive.step(name)["reason"]


def test_final_stage_runs_the_scripts_after_the_config_stage(drive, tmp_path):
    marker = tmp_path / "final"
    drive.user_data(script(f"echo final >> {marker}"))
    res = drive.run("--stage", "local")
    assert res.returncode == 0, res.stderr
    assert not marker.exists()  # the config stage leaves scripts to the final stage
    res = drive.run("--stage", "final")
    assert res.returncode == 0, res.stderr
    assert marker.read_text() == "final\n"
    assert drive.step("scripts")["result"] == "changed"


def test_a_script_that_cannot_be_written_does_not_stop_the_next(drive, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    scripts = drive.root / "var/lib/guestagent/instances/iid-userdata-1/scripts"
    scripts.mkdir(parents=True)
    (scripts / "part-001").symlink_to(victim)
    drive.user_data(mime((script("echo first"), "x-shellscript"),
                         (script(f"echo second > {tmp_path}/second"), "x-shellscript")))
    res = drive.run()
    assert res.returncode == 1
    assert victim.read_text() == "precious\n"  # never written through the link
    assert (tmp_path / "second").read_text() == "second\n"
    step = drive.step("scripts")
    assert "script 'part-001' could not be written to /var/lib/guestagent/instances/" in \
        step["error"]
    assert step["changes"][0].startswith("script 'part-002' exited 0")


def test_scripts_are_split_out_once_per_run_and_without_yaml(tmp_path, monkeypatch):
    """The config stage asks whether scripts are pending and the same run (the
    `all` stage) then runs them: the user-data is split once, and a run that
    reads the stored #cloud-config never parses the YAML for its scripts."""
    import guestagent.userdata as userdata_pkg
    from guestagent.metadata import Metadata

    from support.step_context import StepContext

    calls = []
    real = userdata_pkg.decode

    def counting(*args, **kwargs):
        calls.append(kwargs.get("cloud_config", True))
        return real(*args, **kwargs)

    monkeypatch.setattr(userdata_pkg, "decode", counting)
    msg = MIMEMultipart()
    msg.attach(MIMEText("#cloud-config\nhostname: h\n", "cloud-config"))
    msg.attach(MIMEText("#!/bin/sh\ntrue\n", "x-shellscript"))
    md = Metadata(source="test", instance_id="i-1", user_data=msg.as_bytes())
    ctx = StepContext(tmp_path, metadata=md)
    assert [s.content for s in ctx.user_scripts] == [b"#!/bin/sh\ntrue\n"]
    assert [s.content for s in ctx.user_scripts] == [b"#!/bin/sh\ntrue\n"]
    assert calls == [False]
