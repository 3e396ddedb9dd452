"""`## template: jinja` user-data and the instance data it renders from.

The rendering is compared with cloud-init's own: cloud-init 25.1's
render_jinja_payload, from Debian 13's package unpacked with dpkg-deb -x and
never installed (tests/support/cloudinit_validator.py), renders the same
templates from the same instance data, and the texts must be equal.
"""

import json
import os
import stat
import subprocess
import sys
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest

from guestagent.metadata import Metadata
from guestagent.metadata.instance_data import build, jinja_variables, redacted
from guestagent.schema.checks import INVALID, NOTICE, UNSUPPORTED, kind_of
from guestagent.system import System
from guestagent.userdata import decode

from support import REPO, cloudinit_validator
from support.userdata_helpers import Drive

META = {"uuid": "0d6c8f43-8a8c-4b5e-9d1e-3c1f2f6b7a11", "name": "web-1",
        "hostname": "web-1.novalocal", "availability_zone": "zone-b",
        "meta": {"role": "db", "dashed-key.x": "d"}, "admin_pass": "s3cret-pass"}

TEMPLATES = [
    "## template: jinja\n#cloud-config\nhostname: {{ v1.local_hostname }}\n",
    "## template: jinja\n#!/bin/sh\necho {{ v1['instance-id'] }} {{ instance_id }} "
    "{{ v1.availability_zone }} {{ availability_zone }} {{ ds.meta_data.meta.role }}\n",
    "## template: jinja\n{% for k in v1.public_ssh_keys %}\n- {{ k }}\n{% endfor %}\ndone\n",
    "## template: jinja\n{% set l = [] %}{% do l.append(v1.platform) %}{{ l }}",
    "## template: jinja\nmissing: {{ v1.nope }} {{ nope }} {{ ds.meta_data.nope }}\n",
    "## template: jinja\n{{ ds.meta_data.meta.dashed_key_x }} {{ v1.cloud_name }} "
    "{{ v1.subplatform }} {{ v1.distro }}\n",
    "## template: jinja\n{% if v1.region %}r={{ v1.region }}{% else %}no region"
    "{% endif %} {{ ds.meta_data.admin_pass }}\n",
]


def _metadata():
    return Metadata(source="configdrive (/dev/sr0)", instance_id=META["uuid"],
                    hostname=META["hostname"], availability_zone=META["availability_zone"],
                    name=META["name"], admin_pass=META["admin_pass"],
                    public_keys=["ssh-ed25519 AAAAC3Nza k1", "ssh-ed25519 AAAAC3Nzb k2"],
                    raw={"meta_data.json": META})


def _ours(template, data):
    ud = decode(template.encode(), 1 << 20, log_warnings=False,
                jinja=lambda: (jinja_variables(data), False))
    return ud


def _cloud_init_renders(templates, data):
    """cloud-init's own render_jinja_payload over each template (one process)."""
    tree = cloudinit_validator.unpacked()
    code = ("import json, sys\n"
            "from cloudinit.handlers.jinja_template import render_jinja_payload\n"
            "templates, data = json.load(sys.stdin)\n"
            "print(json.dumps([render_jinja_payload(t, 'part-001', data) for t in templates]))\n")
    res = subprocess.run([sys.executable, "-c", code], input=json.dumps([templates, data]),
                         capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=os.path.join(
                             tree, "usr/lib/python3/dist-packages")))
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_renders_exactly_as_cloud_init_renders(root):
    data = build(_metadata(), System(str(root)))
    theirs = _cloud_init_renders(TEMPLATES, data)
    from guestagent.userdata.jinja import render
    for template, expected in zip(TEMPLATES, theirs):
        mine, _ = render(template, jinja_variables(data), 1 << 20, "user-data")
        assert mine == expected, template
    # and what the values are, so equal cannot mean equally empty
    assert theirs[1] == (f"#!/bin/sh\necho {META['uuid']} {META['uuid']} zone-b zone-b db\n")
    assert theirs[2] == "- ssh-ed25519 AAAAC3Nza k1\n- ssh-ed25519 AAAAC3Nzb k2\ndone\n"
    assert theirs[4] == ("missing: CI_MISSING_JINJA_VAR/nope CI_MISSING_JINJA_VAR/nope "
                         "CI_MISSING_JINJA_VAR/nope\n")
    assert theirs[5].startswith("d openstack config-disk (/dev/sr0) ")


def test_rendered_part_is_read_by_its_new_first_line():
    data = build(_metadata(), System("/"))
    ud = _ours(TEMPLATES[0], data)
    assert ud.cloud_config == {"hostname": "web-1.novalocal"}
    assert [p.what for p in ud.parts] == ["jinja template, rendered: #cloud-config"]
    assert ud.warnings == []
    ud = _ours(TEMPLATES[1], data)
    [script] = ud.scripts
    assert script.content.startswith(b"#!/bin/sh\necho " + META["uuid"].encode())
    assert ud.parts[0].what.startswith("jinja template, rendered: script 'part-001'")


def test_missing_variable_is_named_and_rendered_as_cloud_init_does():
    data = build(_metadata(), System("/"))
    ud = _ours("## template: jinja\n#cloud-config\nruncmd: ['echo {{ v1.nope }}']\n", data)
    assert ud.cloud_config["runcmd"] == ["echo CI_MISSING_JINJA_VAR/nope"]
    [note] = ud.warnings
    assert kind_of(note) == INVALID and "'nope'" in note and "as in cloud-init" in note


@pytest.mark.parametrize("template, expected", [
    ("## template: jinja\n#cloud-config\n{% if %}\n", "jinja template syntax error at line 3"),
    ("## template: jinja\n{{ ''.__class__.__mro__ }}\n", "SecurityError"),
    ("## template: jinja\n{{ v1.local-hostname }}\n", 'Perhaps you meant "local_hostname"'),
    ("## template: jinja\n{% for i in range(100000) %}{% for j in range(100000) %}"
     "xxxxxxxxxxxxxxxx{% endfor %}{% endfor %}", "larger than [userdata] max_bytes"),
    ("## template: jinja\n#include http://example.invalid/x\n",
     "renders to #include, which guestagent does not read from a template"),
    ("## template: jinja\njust words\n", "renders to none of #cloud-config or a #! script"),
])
def test_templates_that_cannot_be_used_are_named_and_skipped(template, expected):
    data = build(_metadata(), System("/"))
    ud = _ours(template, data)
    assert ud.cloud_config == {} and ud.scripts == []
    assert any(expected in w for w in ud.warnings), ud.warnings
    assert ud.parts and "skipped" in ud.parts[0].what


def test_instance_data_redacted_copy():
    data = build(_metadata(), System("/"))
    public = redacted(data)
    assert public["ds"]["meta_data"]["admin_pass"] == "redacted for non-root user"
    assert public["sensitive_keys"] == ["ds/meta_data/admin_pass"]
    assert data["ds"]["meta_data"]["admin_pass"] == META["admin_pass"]
    assert "s3cret" not in json.dumps(public)
    v1 = public["v1"]
    assert (v1["instance_id"], v1["instance-id"], v1["local_hostname"],
            v1["availability_zone"], v1["cloud_name"], v1["platform"], v1["subplatform"]) == (
        META["uuid"], META["uuid"], "web-1.novalocal", "zone-b", "openstack", "openstack",
        "config-disk (/dev/sr0)")


# -- through the agent ----------------------------------------------------------------

@pytest.fixture
def drive(tmp_path, run_agent, root):
    return Drive(tmp_path, run_agent, root)


def _mime(*parts):
    m = MIMEMultipart()
    for text, subtype in parts:
        m.attach(MIMEText(text, subtype))
    return m.as_bytes()


def test_boot_renders_templates_and_publishes_the_instance_data(drive, tmp_path):
    marker = tmp_path / "script-saw"
    drive.user_data(_mime(
        ("## template: jinja\n#cloud-config\nwrite_files:\n  - path: /etc/ga-jinja\n"
         "    content: '{{ v1.instance_id }} {{ v1.local_hostname }} "
         "{{ ds.meta_data.meta.role }}'\n", "jinja2"),
        (f"## template: jinja\n#!/bin/sh\necho {{{{ v1.availability_zone }}}} > {marker}\n",
         "plain")))
    res = drive.run()
    assert res.returncode == 0, res.stderr
    assert (drive.root / "etc/ga-jinja").read_text() == \
        "iid-userdata-1 demo.novalocal webserver"
    assert marker.read_text() == "nova\n"
    run = drive.root / "run/guestagent"
    public = json.loads((run / "instance-data.json").read_text())
    sensitive = json.loads((run / "instance-data-sensitive.json").read_text())
    assert stat.S_IMODE((run / "instance-data.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((run / "instance-data-sensitive.json").stat().st_mode) == 0o600
    assert public["v1"]["instance_id"] == "iid-userdata-1"
    assert public["ds"]["meta_data"]["admin_pass"] == "redacted for non-root user"
    assert sensitive["ds"]["meta_data"]["admin_pass"] == "not-a-real-password-demo-only"
    assert public["sensitive_keys"] == sensitive["sensitive_keys"] == \
        ["ds/meta_data/admin_pass", "ds/meta_data/random_seed"]
    # the same names through `guestagent query`, redacted
    q = drive._run_agent("query", "--root", drive.root, "v1.instance_id")
    assert q.stdout == "iid-userdata-1\n", q.stderr
    q = drive._run_agent("query", "--root", drive.root, "ds/meta_data/admin_pass")
    assert q.stdout == "redacted for non-root user\n"


def test_boot_warns_about_a_missing_variable(drive):
    drive.user_data("## template: jinja\n#cloud-config\nwrite_files:\n"
                    "  - {path: /etc/ga-miss, content: '{{ v1.no_such_thing }}'}\n")
    res = drive.run()
    assert (drive.root / "etc/ga-miss").read_text() == "CI_MISSING_JINJA_VAR/no_such_thing"
    assert "jinja variables the instance data does not have" in res.stderr
    assert "'no_such_thing'" in res.stderr


# -- without Jinja2, and check-userdata -------------------------------------------------

_NO_JINJA = ("import sys; sys.modules['jinja2'] = None\n"
             "from guestagent.cli import main\nsys.exit(main(sys.argv[1:]))\n")


def test_without_jinja2_the_part_is_skipped_named_and_the_rest_used(tmp_path):
    f = tmp_path / "ud"
    f.write_bytes(_mime(("## template: jinja\n#cloud-config\nhostname: {{ v1.x }}\n", "plain"),
                        ("#cloud-config\nruncmd: [ls]\n", "cloud-config")))
    res = subprocess.run([sys.executable, "-c", _NO_JINJA, "check-userdata", str(f)],
                         capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=REPO))
    assert res.returncode == 1, res.stdout + res.stderr
    assert "Jinja2 is not installed (python3-jinja2); skipped" in res.stdout
    assert "part 1: jinja template: not rendered, skipped" in res.stdout
    assert "runcmd" in res.stdout and "will do" in res.stdout
    ud = _ours(f.read_text(), {"v1": {"x": "h"}})  # with Jinja2 here: both parts used
    assert set(ud.cloud_config) == {"hostname", "runcmd"}


def test_without_jinja2_the_note_is_unsupported():
    import builtins
    real = builtins.__import__

    def blocked(name, *args, **kwargs):
        if name.startswith("jinja2"):
            raise ImportError(name)
        return real(name, *args, **kwargs)
    builtins.__import__ = blocked
    try:
        ud = decode(b"## template: jinja\n#!/bin/sh\necho\n", 1 << 20, log_warnings=False)
    finally:
        builtins.__import__ = real
    [note] = ud.warnings
    assert kind_of(note) == UNSUPPORTED and ud.scripts == []


def test_check_userdata_renders_with_example_or_given_instance_data(run_agent, tmp_path):
    f = tmp_path / "ud"
    f.write_text("## template: jinja\n#cloud-config\nhostname: h-{{ v1.instance_id[:8] }}\n"
                 "runcmd: ['echo {{ ds.meta_data.role }}']\n")
    res = run_agent("check-userdata", f)
    # no instance data on this machine: the example, and a missing name is only a note
    assert res.returncode == 0, res.stdout
    assert "not in the example instance data ('role')" in res.stdout
    data = tmp_path / "instance-data.json"
    data.write_text(json.dumps(build(_metadata(), System("/"))))
    res = run_agent("check-userdata", f, "--instance-data", data, "--json")
    report = json.loads(res.stdout)
    assert res.returncode == 1
    [note] = [n for n in report["notes"] if "jinja" in n["text"]]
    assert note["kind"] == INVALID and "'role'" in note["text"]
    res = run_agent("check-userdata", f, "--instance-data", tmp_path / "nope.json")
    assert res.returncode == 2 and "--instance-data" in res.stderr


def test_example_note_kind_is_notice():
    from guestagent.metadata.instance_data import for_check
    ud = decode(b"## template: jinja\n#cloud-config\nruncmd: ['echo {{ v1.zzz }}']\n",
                1 << 20, log_warnings=False,
                jinja=for_check(System("/nonexistent-guestagent-root")))
    assert ud.cloud_config["runcmd"] == ["echo CI_MISSING_JINJA_VAR/zzz"]
    assert [kind_of(w) for w in ud.warnings] == [NOTICE]
