"""userdata/combined.py: the #cloud-config steps read, the user's over the
vendor's, worked out once per instance and read back from the state after.

Real Metadata, config, State and System on a scratch root; the user-data's
own decoding is what `decode` does (tests/test_userdata.py covers it).
"""

import logging

import pytest

from guestagent import config as configmod
from guestagent.metadata import Metadata
from guestagent.state import State
from guestagent.system import System
from guestagent.userdata import decode
from guestagent.userdata.combined import cloud_config

USER = b"#cloud-config\nhostname: user-host\nwrite_files:\n  - {path: /etc/u, content: u}\n"
VENDOR = "#cloud-config\nhostname: vendor-host\ntimezone: Europe/Berlin\n"


@pytest.fixture
def setup(root):
    system = System(str(root))
    state = State(system)
    state.ensure()
    return configmod.load(None, root=str(root)), state


def work_out(cfg, state, md, calls):
    def user_cloud_config():
        calls.append(md.user_data)
        return decode(md.user_data, cfg.getint("userdata", "max_bytes")).cloud_config
    return cloud_config(md, cfg, state, user_cloud_config, jinja=None)


def test_the_user_wins_over_the_vendor_and_a_later_run_reads_the_stored_copy(setup):
    cfg, state = setup
    md = Metadata("test", "i-1", user_data=USER, vendor_data={"cloud-init": VENDOR})
    calls = []
    first = work_out(cfg, state, md, calls)
    assert first["hostname"] == "user-host"  # the user's key wins
    assert first["timezone"] == "Europe/Berlin"  # the vendor's fills in
    assert len(calls) == 1
    again = work_out(cfg, state, md, calls)
    assert again == first and len(calls) == 1  # read back, not decoded again


@pytest.mark.parametrize("change", ["user", "vendor", "setting"])
def test_a_changed_document_or_setting_is_worked_out_again(setup, root, change):
    cfg, state = setup
    md = Metadata("test", "i-1", user_data=USER, vendor_data={"cloud-init": VENDOR})
    calls = []
    work_out(cfg, state, md, calls)
    if change == "user":
        md.user_data = USER.replace(b"user-host", b"other-host")
    elif change == "vendor":
        md.vendor_data = {"cloud-init": VENDOR.replace("Berlin", "Paris")}
    else:
        conf = root / "no-vendor.conf"
        conf.write_text("[userdata]\nvendor_data = no\n")
        cfg = configmod.load(str(conf), root=str(root))
    cc = work_out(cfg, state, md, calls)
    assert len(calls) == 2
    assert cc["hostname"] == ("other-host" if change == "user" else "user-host")
    assert cc.get("timezone") == {"user": "Europe/Berlin", "vendor": "Europe/Paris",
                                  "setting": None}[change]


def test_the_user_data_turns_vendor_data_off(setup, caplog):
    cfg, state = setup
    md = Metadata("test", "i-1", user_data=USER + b"vendor_data: {enabled: false}\n",
                  vendor_data={"cloud-init": VENDOR})
    with caplog.at_level(logging.INFO):
        cc = work_out(cfg, state, md, [])
    assert "timezone" not in cc and cc["hostname"] == "user-host"
    assert "vendor data turned off by the user-data" in caplog.text


def test_without_state_nothing_is_stored(root):
    cfg = configmod.load(None, root=str(root))
    md = Metadata("test", "i-1", vendor_data=VENDOR)
    calls = []
    assert work_out(cfg, None, md, calls) == {"hostname": "vendor-host",
                                               "timezone": "Europe/Berlin"}
    assert calls == []  # no user-data: nothing of the user's to decode
    assert not (root / "var/lib/guestagent/instances").exists()
