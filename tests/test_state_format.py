"""The stored state's format version (guestagent/state/__init__.py: FORMAT, the file
/var/lib/guestagent/format): a run records it; an older agent meeting a newer
state (a package downgraded under it) says so in one line, changes nothing and
does not crash."""

import hashlib
import json
import os

from guestagent.state import FORMAT

from support import EXAMPLES

DEMO = os.path.join(EXAMPLES, "demo.conf")


def tree_digest(top):
    """Every file under ``top`` with its content, for "nothing changed"."""
    found = {}
    for d, _, files in os.walk(top):
        for name in files:
            path = os.path.join(d, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, top)] = hashlib.sha256(f.read()).hexdigest()
    return found


def test_a_run_records_the_format_and_keeps_a_pre_format_state(root, run_agent):
    run_agent("--once", "--root", root, "--config", DEMO, check=True)
    marker = root / "var/lib/guestagent/format"
    assert marker.read_text() == f"{FORMAT}\n"
    # state from before the marker existed is format 1: read, and marked
    marker.unlink()
    res = run_agent("--once", "--root", root, "--config", DEMO)
    assert res.returncode == 0, res.stderr
    assert "same instance" in res.stderr
    assert marker.read_text() == f"{FORMAT}\n"


def test_an_older_agent_leaves_a_newer_state_alone_and_says_so(root, run_agent):
    run_agent("--once", "--root", root, "--config", DEMO, check=True)
    state = root / "var/lib/guestagent"
    (state / "format").write_text("99\n")
    # what a newer agent might store: shapes this one does not know
    status = json.loads((state / "status.json").read_text())
    status["runs"][0]["stage"] = {"future": ["shape"]}
    (state / "status.json").write_text(json.dumps(status))
    before = tree_digest(state)

    res = run_agent("--once", "--root", root, "--config", DEMO)
    assert res.returncode == 2
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert "is format 99, written by a newer guestagent" in lines[0]
    assert f"knows format {FORMAT} and leaves it alone" in lines[0]
    assert tree_digest(state) == before, "the older agent changed the newer state"

    res = run_agent("status", "--root", root)
    assert "Traceback" not in res.stderr
    assert res.stderr.splitlines()[0].endswith(
        "reinstall the newer package, or remove /var/lib/guestagent to configure this "
        "instance again from scratch")
    assert "stage {" in res.stdout  # the rest is still shown, escaped

    res = run_agent("status", "--wait", "--timeout", "5", "--root", root)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "is format 99" in res.stderr.splitlines()[0]
    res = run_agent("query", "instance_id", "--root", root)
    assert "Traceback" not in res.stderr
    assert tree_digest(state) == before


def test_a_damaged_marker_is_named_and_the_run_goes_on(root, run_agent):
    run_agent("--once", "--root", root, "--config", DEMO, check=True)
    (root / "var/lib/guestagent/format").write_text("two\n")
    res = run_agent("--once", "--root", root, "--config", DEMO)
    assert res.returncode == 0, res.stderr
    assert "/var/lib/guestagent/format is damaged (not a number)" in res.stderr
