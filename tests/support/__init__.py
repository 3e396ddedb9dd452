"""Helpers the tests share (conftest.py files hold only fixtures).

``tests/`` is on sys.path for pytest (pyproject's ``pythonpath``), so a test
module imports ``from support import REPO`` or ``from support.netns import
Netns``; scripts outside pytest (tests/e2e/harness.py, bench/) put ``tests/``
on sys.path themselves.

  netns            a network namespace with 169.254.169.254 on its loopback
  metadata_server  our OpenStack + EC2 metadata server (run as a script)
  loopdisk         sparse image files on loop devices
  step_context     a real step Context on a scratch root
  userdata_helpers a config drive with chosen user-data, and the agent run on it
  marks            pytest marks (needs_root)
  sshd             what sshd -T makes of a scratch root's sshd_config

This module itself needs only the standard library (the e2e harness and the
benchmark import the package outside pytest).
"""

import os
import sys

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(TESTS)
EXAMPLES = os.path.join(REPO, "examples")


def agent_argv():
    """The installed command, run the way the units run it."""
    return [sys.executable, "-m", "guestagent"]
