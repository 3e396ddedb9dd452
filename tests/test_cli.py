"""The command line's contract with an operator's habits: pipes, flags, exit codes."""

import json
import os
import re
import subprocess

from support import EXAMPLES, REPO, agent_argv

DEMO_CONF = f"{EXAMPLES}/demo.conf"


def test_every_command_takes_config(tmp_path, root, run_agent):
    run_agent("--once", "--root", root, "--config", DEMO_CONF, check=True)
    for cmd in (["status"], ["status", "--json"], ["query"], ["check-image"],
                ["clean", "--all", "--dry-run"]):
        res = run_agent(*cmd, "--root", root, "--config", DEMO_CONF)
        assert "unrecognized arguments" not in res.stderr, cmd
        assert res.returncode in (0, 1), (cmd, res.stderr)
    bad = tmp_path / "bad.conf"
    bad.write_text("[main]\nno equals sign here\n")
    for cmd in (["status"], ["query"], ["check-image"], ["clean", "--all"]):
        res = run_agent(*cmd, "--root", root, "--config", bad)
        assert res.returncode == 2 and str(bad) in res.stderr, (cmd, res.stderr)


def test_a_closed_pipe_ends_quietly(root, run_agent):
    run_agent("--once", "--root", root, "--config", DEMO_CONF, check=True)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader (`| head -1`) is already gone
    try:
        res = subprocess.run(agent_argv() + ["status", "--json", "--root", str(root)],
                             stdout=write_end, stderr=subprocess.PIPE, text=True,
                             env=dict(os.environ, PYTHONPATH=REPO), timeout=60)
    finally:
        os.close(write_end)
    assert res.stderr == ""
    assert res.returncode == 141  # as a shell shows a tool that SIGPIPE ended


def test_only_steps_that_need_no_metadata_do_not_look_for_it(tmp_path, root, run_agent):
    conf = tmp_path / "none.conf"  # no datasource can answer, and it would take 30 s
    conf.write_text("[main]\ndatasources = configdrive, openstack\ndeadline = 30\n"
                    "metadata_url = http://127.0.0.1:9\n[configdrive]\npath = /nonexistent\n")
    res = run_agent("--once", "--only", "growroot", "--root", root, "--config", conf,
                    timeout=20)
    assert res.returncode == 0, res.stderr
    assert "need no metadata, so the metadata service is not asked" in res.stderr
    last = json.loads(run_agent("status", "--json", "--root", root).stdout)["last"]
    assert [s["name"] for s in last["steps"]] == ["growroot"]
    assert last["exit_code"] == 0
    # a step that reads the metadata still looks, and its absence is still exit 3
    conf.write_text(conf.read_text().replace("deadline = 30", "deadline = 0"))
    res = run_agent("--once", "--only", "growroot,hostname", "--root", root, "--config", conf)
    assert res.returncode == 3, res.stderr


def test_readme_step_table_is_the_run_order():
    from guestagent import steps
    readme = open(os.path.join(REPO, "README.md")).read()
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \|", readme, re.M)
    table = [(name, when.strip()) for name, when in rows if name in steps.ALL_STEPS]
    assert [name for name, _ in table] == steps.ALL_STEPS
    for name, when in table:
        want = "every boot" if steps.load(name).frequency == steps.PER_BOOT else "per instance"
        assert when.startswith(want), (name, when)
        assert when.endswith("late") == (name in steps.FINAL_STEPS), (name, when)
