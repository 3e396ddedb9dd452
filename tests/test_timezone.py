"""timezone: validated against the image's own zoneinfo."""

import os

import pytest

from guestagent.steps import Skip
from guestagent.steps import timezone as step
from guestagent.userdata import decode

from support.step_context import StepContext

HOST_ZONEINFO = "/usr/share/zoneinfo"


@pytest.fixture
def tz_root(root):
    zi = root / "usr/share/zoneinfo/America"
    zi.mkdir(parents=True)
    with open(os.path.join(HOST_ZONEINFO, "America/Vancouver"), "rb") as f:
        (zi / "Vancouver").write_bytes(f.read())  # a real TZif file
    (root / "etc/debian_version").write_text("12\n")
    return root


needs_tzdata = pytest.mark.skipif(not os.path.exists(HOST_ZONEINFO + "/America/Vancouver"),
                                  reason="needs tzdata on this machine")


@needs_tzdata
def test_cloud_init_example_sets_localtime_and_etc_timezone(tz_root):
    ud = decode(b"#cloud-config\ntimezone: America/Vancouver\n", 1 << 20)
    changes = step.run(StepContext(tz_root, cloud_config=ud.cloud_config))
    assert os.readlink(tz_root / "etc/localtime") == "/usr/share/zoneinfo/America/Vancouver"
    assert (tz_root / "etc/timezone").read_text() == "America/Vancouver\n"
    assert changes == ["/etc/localtime -> /usr/share/zoneinfo/America/Vancouver",
                       "wrote /etc/timezone (America/Vancouver)"]
    with pytest.raises(Skip, match="already America/Vancouver"):
        step.run(StepContext(tz_root, cloud_config=ud.cloud_config))


@needs_tzdata
@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "../../etc/passwd", "America",
                                  "America/Vancouver; rm -rf /"])
def test_a_zone_the_image_lacks_is_refused_and_nothing_changes(tz_root, name):
    with pytest.raises(RuntimeError, match="the zone is unchanged"):
        step.run(StepContext(tz_root, cloud_config={"timezone": name}))
    assert not os.path.lexists(tz_root / "etc/localtime")
    assert not (tz_root / "etc/timezone").exists()


def test_not_a_string_is_a_warning():
    ud = decode(b"#cloud-config\ntimezone: [UTC]\n", 1 << 20)
    assert "timezone" not in ud.cloud_config
    assert any("'timezone'" in w for w in ud.warnings)
