"""pytest marks the test modules share."""

import os

import pytest

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, mounts)")
