import configparser
import os

import pytest

from guestagent import config
from guestagent.config import ConfigError, load

from support import REPO


def test_defaults_when_no_file(tmp_path):
    cfg = load(root=str(tmp_path))
    assert cfg.getlist("main", "datasources") == ["configdrive", "nocloud", "nocloud-net",
                                                 "hetzner", "openstack", "ec2"]
    assert cfg.get("main", "metadata_url") == "http://169.254.169.254"
    assert cfg.getlist("growroot", "devices") == ["/"]


def test_dropins_override_in_name_order(tmp_path):
    etc = tmp_path / "etc/guestagent"
    (etc / "guestagent.conf.d").mkdir(parents=True)
    (etc / "guestagent.conf").write_text("[main]\ndeadline = 30\n")
    (etc / "guestagent.conf.d/20-b.conf").write_text("[main]\ndeadline = 7\n")
    (etc / "guestagent.conf.d/10-a.conf").write_text("[main]\ndeadline = 5\ndefault_user = ops\n")
    (etc / "guestagent.conf.d/ignored.txt").write_text("[main]\ndeadline = 99\n")
    cfg = load(root=str(tmp_path))
    assert cfg.getfloat("main", "deadline") == 7
    assert cfg.get("main", "default_user") == "ops"


def test_unknown_keys_warn_by_name(tmp_path, caplog):
    f = tmp_path / "g.conf"
    f.write_text("[main]\ndeadlin = 5\n[nosuch]\nx = 1\n")
    load(str(f))
    assert "unknown key 'deadlin' in [main]" in caplog.text
    assert "unknown section [nosuch]" in caplog.text


@pytest.mark.parametrize("text,expect", [
    ("deadline = 5\n", "line 1"),
    ("[main]\nthis is not a setting\n", "line 2"),
    ("[main]\ndeadline = soon\n", "deadline = 'soon'"),
    ("[main]\ndatasources = configdrive, azure\n", "unknown datasource 'azure'"),
    ("[growroot]\nenabled = perhaps\n", "expected yes or no"),
])
def test_malformed_file_names_file_and_problem(tmp_path, text, expect):
    f = tmp_path / "bad.conf"
    f.write_text(text)
    with pytest.raises(ConfigError) as e:
        load(str(f))
    assert expect in str(e.value)
    if "line" in expect:
        assert str(f) in str(e.value)


def test_missing_explicit_config_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load(str(tmp_path / "nope.conf"))


def test_relative_paths_resolve_next_to_the_config(tmp_path):
    f = tmp_path / "sub" / "g.conf"
    f.parent.mkdir()
    f.write_text("[configdrive]\npath = drive\n")
    assert load(str(f)).getpath("configdrive", "path") == str(tmp_path / "sub" / "drive")


def test_shipped_config_lists_every_key_commented_with_its_default():
    path = os.path.join(REPO, "conf", "guestagent.conf")
    text = open(path).read()
    active = configparser.ConfigParser()
    active.read_string(text)
    assert all(not active.items(s) for s in active.sections()), "shipped keys must be commented"
    uncommented = "\n".join(
        line[1:] if line.startswith("#") and "=" in line and not line.startswith("# ") else line
        for line in text.splitlines())
    shipped = configparser.ConfigParser(interpolation=None)
    shipped.read_string(uncommented)
    for section, keys in config.DEFAULTS.items():
        assert shipped.has_section(section), section
        for key, default in keys.items():
            assert shipped.get(section, key) == default, f"[{section}] {key}"
        assert set(shipped.options(section)) == set(keys), section
