import base64
import logging
import os

import pytest

from guestagent.metadata import Metadata
from guestagent.steps import Skip
from guestagent.steps import random_seed as step

from support.step_context import StepContext

SEED = os.urandom(512)


def ctx(root, seed, live=False):
    return StepContext(root, metadata=Metadata(source="t", instance_id="i-1",
                                               random_seed=seed), live=live)


def test_the_seed_bytes_go_into_the_random_device_and_never_into_the_log(tmp_path, caplog):
    (tmp_path / "dev").mkdir()
    dev = tmp_path / "dev" / "urandom"
    dev.write_bytes(b"")
    encoded = base64.b64encode(SEED).decode()
    with caplog.at_level(logging.DEBUG):
        changes = step.run(ctx(tmp_path, encoded))
    assert dev.read_bytes() == SEED
    assert changes == ["mixed the metadata's random_seed (512 bytes) into the kernel's "
                       "entropy pool"]
    assert encoded[:16] not in caplog.text


def test_a_seed_that_is_not_base64_is_still_mixed_in_as_it_is(tmp_path, caplog):
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "urandom").write_bytes(b"")
    with caplog.at_level(logging.DEBUG):
        step.run(ctx(tmp_path, "Seed-55aa0b7e-secret"))
    assert (tmp_path / "dev" / "urandom").read_bytes() == b"Seed-55aa0b7e-secret"
    assert "55aa0b7e" not in caplog.text


def test_the_real_device_on_a_live_system(tmp_path):
    # /dev/urandom takes any bytes from root and only mixes them in: this is
    # the kernel's own device, exactly what a boot writes to
    s = StepContext(tmp_path, metadata=Metadata(source="t", instance_id="i-1",
                                                random_seed=base64.b64encode(SEED).decode()))
    s.system.root, s.system.live = "/", True
    assert step.run(s) and os.stat("/dev/urandom").st_rdev


@pytest.mark.parametrize("setup, why", [
    (None, "no /dev/urandom"),
    ("symlink", "not the kernel's random device"),
])
def test_no_device_or_a_planted_link_is_a_skip(tmp_path, setup, why):
    if setup == "symlink":
        (tmp_path / "dev").mkdir()
        (tmp_path / "target").write_bytes(b"")
        os.symlink(tmp_path / "target", tmp_path / "dev" / "urandom")
    with pytest.raises(Skip, match=why):
        step.run(ctx(tmp_path, base64.b64encode(SEED).decode()))
    assert not (tmp_path / "target").exists() or (tmp_path / "target").read_bytes() == b""


def test_no_seed_is_a_skip(tmp_path):
    with pytest.raises(Skip, match="no random_seed"):
        step.run(ctx(tmp_path, ""))
