"""apt: sources (with keys, signed-by, substitutions), mirrors, conf, proxy, old keys."""

import re

import pytest

from guestagent.steps import Skip
from guestagent.steps import apt_configure as step
from guestagent.steps.apt_configure import sources as src
from guestagent.userdata import decode

from support.step_context import StepContext

KEY = """-----BEGIN PGP PUBLIC KEY BLOCK-----

mQINBFzvJpYBEADY8l1YvO7iYW5gUESyzsTGnMvVUmlV3XarBaJz9bGRmgPXh7jc
=i0tj
-----END PGP PUBLIC KEY BLOCK-----"""


@pytest.fixture
def apt_root(root):
    (root / "etc/apt/sources.list.d").mkdir(parents=True)
    (root / "etc/apt/sources.list").write_text(
        "deb http://deb.debian.org/debian bookworm main\n"
        "deb http://deb.debian.org/debian-security bookworm-security main\n")
    (root / "etc/debian_version").write_text("12.5\n")
    (root / "etc/os-release").write_text('ID=debian\nVERSION_CODENAME=bookworm\n')
    return root


def run(root, text):
    ud = decode(text.encode(), 1 << 20)
    assert ud.warnings == []
    return step.run(StepContext(root, cloud_config=ud.cloud_config))


def test_source_with_inline_key_gets_a_keyring_and_signed_by(apt_root):
    indented = "\n".join("        " + ln for ln in KEY.splitlines())
    run(apt_root, f"""#cloud-config
apt:
  preserve_sources_list: true
  sources:
    ros2:
      source: 'deb http://packages.ros.org/ros2/ubuntu $RELEASE main'
      key: |
{indented}
""")
    assert (apt_root / "etc/apt/keyrings/ros2.asc").read_text() == KEY + "\n"
    assert (apt_root / "etc/apt/sources.list.d/ros2.list").read_text() == (
        "deb [signed-by=/etc/apt/keyrings/ros2.asc] http://packages.ros.org/ros2/ubuntu "
        "bookworm main\n")


def test_key_file_substitution_and_existing_options(apt_root):
    ctx = StepContext(apt_root, cloud_config={"apt": {"sources": {
        "docker.list": {"source": "deb [arch=amd64 signed-by=$KEY_FILE] "
                                  "https://download.docker.com/linux/debian $RELEASE stable",
                        "key": KEY},
        "extra": {"source": "deb [arch=amd64] $MIRROR $RELEASE-backports main"}}}})
    step.run(ctx)
    assert (apt_root / "etc/apt/sources.list.d/docker.list").read_text() == (
        "deb [arch=amd64 signed-by=/etc/apt/keyrings/docker.asc] "
        "https://download.docker.com/linux/debian bookworm stable\n")
    assert (apt_root / "etc/apt/sources.list.d/extra.list").read_text() == (
        "deb [arch=amd64] http://deb.debian.org/debian bookworm-backports main\n")


def test_same_filename_appends_unless_append_false(apt_root):
    step.run(StepContext(apt_root, cloud_config={"apt": {"sources": {
        "a": {"source": "deb http://a/ x main", "filename": "shared.list"},
        "b": {"source": "deb http://b/ x main", "filename": "shared.list"},
        "c": {"source": "deb http://c/ x main", "filename": "other"},
        "d": {"source": "deb http://d/ x main", "filename": "other", "append": False}}}}))
    assert (apt_root / "etc/apt/sources.list.d/shared.list").read_text() == \
        "deb http://a/ x main\ndeb http://b/ x main\n"
    assert (apt_root / "etc/apt/sources.list.d/other.list").read_text() == \
        "deb http://d/ x main\n"


def test_primary_and_security_rewrite_the_image_sources(apt_root):
    run(apt_root, """#cloud-config
apt:
  primary:
    - arches: [default]
      uri: https://mirror.example/debian
  security:
    - arches: [default]
      uri: https://mirror.example/debian-security
""")
    assert (apt_root / "etc/apt/sources.list").read_text() == (
        "deb https://mirror.example/debian bookworm main\n"
        "deb https://mirror.example/debian-security bookworm-security main\n")


def test_preserve_sources_list_keeps_them(apt_root):
    before = (apt_root / "etc/apt/sources.list").read_text()
    step.run(StepContext(apt_root, cloud_config={"apt": {
        "preserve_sources_list": True,
        "primary": [{"arches": ["default"], "uri": "https://m/debian"}],
        "conf": 'APT { Get { Assume-Yes "true"; }; };'}}))
    assert (apt_root / "etc/apt/sources.list").read_text() == before
    assert (apt_root / "etc/apt/apt.conf.d/94guestagent-config").read_text() == \
        'APT { Get { Assume-Yes "true"; }; };\n'


def test_proxy_and_old_keys(apt_root):
    ud = decode(b"""#cloud-config
apt_proxy: http://proxy.example:3142
apt_https_proxy: http://proxy.example:3143
apt_mirror: http://old.example/debian
apt_sources:
  - source: deb http://ppa.example/ x main
    filename: legacy.list
""", 1 << 20)
    assert ud.warnings == []
    step.run(StepContext(apt_root, cloud_config=ud.cloud_config))
    assert (apt_root / "etc/apt/apt.conf.d/90guestagent-aptproxy").read_text() == (
        'Acquire::http::Proxy "http://proxy.example:3142";\n'
        'Acquire::https::Proxy "http://proxy.example:3143";\n')
    assert (apt_root / "etc/apt/sources.list.d/legacy.list").read_text() == \
        "deb http://ppa.example/ x main\n"
    assert "http://old.example/debian bookworm main" in \
        (apt_root / "etc/apt/sources.list").read_text()


def test_keyserver_failure_is_named_and_other_sources_still_land(apt_root):
    ctx = StepContext(apt_root, cloud_config={"apt": {"sources": {
        "docker.list": {"source": "deb https://download.docker.com/linux/ubuntu x stable",
                        "keyid": "9DC858229FC7DD38854AE2D88D81803C0EBFCD88",
                        # loopback, nothing listens: the lookup fails here, never leaves
                        "keyserver": "hkp://127.0.0.1:9"},
        "plain": {"source": "deb http://plain.example/ x main"}}}})
    out = step.run(ctx)
    assert re.search("docker.list.*9DC858229FC7DD38854AE2D88D81803C0EBFCD88.*127.0.0.1:9",
                     out.error), out
    assert "wrote /etc/apt/sources.list.d/plain.list (1 source line(s))" in out.changes
    assert (apt_root / "etc/apt/sources.list.d/plain.list").exists()
    assert not (apt_root / "etc/apt/sources.list.d/docker.list").exists()


def test_a_key_that_is_not_armored_is_refused(apt_root):
    ctx = StepContext(apt_root, cloud_config={"apt": {"sources": {
        "x": {"source": "deb http://x/ x main", "key": "not a key"}}}})
    assert "not an ASCII-armored" in step.run(ctx).error


def test_no_apt_in_the_image_is_a_skip(root):
    with pytest.raises(Skip, match="does not use apt"):
        step.run(StepContext(root, cloud_config={"apt": {"conf": "x"}}))


def test_bad_fields_are_warnings():
    ud = decode(b"#cloud-config\napt:\n  sources: [a]\n  bogus: 1\n  primary: nope\n",
                1 << 20)
    text = " ".join(ud.warnings)
    assert "'bogus' is not supported" in text
    assert "apt: sources should be" in text and "apt: primary should be" in text


def test_substitute_and_signed_by_helpers():
    assert src.substitute("deb $MIRROR ${RELEASE} main $OTHER", {"MIRROR": "http://m",
                                                              "RELEASE": "r"}) \
        == "deb http://m r main $OTHER"
    assert src.with_signed_by("deb http://x y z", "/k.asc") == "deb [signed-by=/k.asc] http://x y z"
    assert src.with_signed_by("deb [signed-by=/a] http://x y z", "/k") == \
        "deb [signed-by=/a] http://x y z"


def test_old_mirror_search_keys(apt_root):
    ud = decode(b"#cloud-config\napt_mirror_search:\n  - http://m1.example/debian\n"
                b"  - http://m2.example/debian\napt_mirror_search_dns: false\n", 1 << 20)
    assert ud.warnings == []
    step.run(StepContext(apt_root, cloud_config=ud.cloud_config))
    assert "deb http://m1.example/debian bookworm main" in \
        (apt_root / "etc/apt/sources.list").read_text()
    ud = decode(b"#cloud-config\napt_mirror_search_dns: true\n", 1 << 20)
    assert any("not done" in w for w in ud.warnings)
