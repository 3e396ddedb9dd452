"""#cloud-config: every supported key type-checked, merging, unknown keys."""

from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest

from guestagent.userdata import decode

MAX = 1 << 20


def cc(text):
    ud = decode(("#cloud-config\n" + text).encode(), MAX)
    return ud.cloud_config, ud.warnings


# -- each key: a good value kept, a wrong type dropped with one warning ------------

GOOD = [
    ("ssh_authorized_keys: [ssh-ed25519 AAAA a@b, ssh-rsa BBBB c@d]",
     {"ssh_authorized_keys": ["ssh-ed25519 AAAA a@b", "ssh-rsa BBBB c@d"]}),
    ("ssh_authorized_keys: ssh-ed25519 AAAA one@key", {"ssh_authorized_keys":
                                                         ["ssh-ed25519 AAAA one@key"]}),
    ("hostname: web-1", {"hostname": "web-1"}),
    ("fqdn: web-1.example.org", {"fqdn": "web-1.example.org"}),
    ("preserve_hostname: yes", {"preserve_hostname": True}),
    ("preserve_hostname: off", {"preserve_hostname": False}),
    ("manage_resolv_conf: on", {"manage_resolv_conf": True}),
    ("manage_resolv_conf: true\nresolv_conf:\n  nameservers: [192.0.2.1, 2001:db8::1]\n"
     "  searchdomains: [a.org]\n  domain: a.org\n  options: {rotate: true, timeout: 1}",
     {"manage_resolv_conf": True,
      "resolv_conf": {"nameservers": ["192.0.2.1", "2001:db8::1"], "searchdomains": ["a.org"],
                      "domain": "a.org", "options": {"rotate": True, "timeout": 1}}}),
    ("growpart: {mode: auto, devices: [/, /var]}",
     {"growpart": {"mode": "auto", "devices": ["/", "/var"]}}),
    # cloud-init reads these through get_cfg_option_bool: quoted words and 0/1 count
    ("package_update: 'true'\npackage_upgrade: 'False'\npackage_reboot_if_required: 1",
     {"package_update": True, "package_upgrade": False, "package_reboot_if_required": True}),
    ("apt_update: ' Yes '\napt_upgrade: 'off'\npreserve_hostname: '0'\n"
     "manage_resolv_conf: 'on'",
     {"apt_update": True, "apt_upgrade": False, "preserve_hostname": False,
      "manage_resolv_conf": True}),
    ("write_files: [{path: /etc/a, append: 'true', defer: 'no'}]",
     {"write_files": [{"path": "/etc/a", "append": True, "defer": False}]}),
    ("growpart: {mode: off}", {"growpart": {"mode": False}}),  # YAML 1.1: off is false
    ("growpart: {mode: 'off'}", {"growpart": {"mode": "off"}}),
    ("resize_rootfs: true", {"resize_rootfs": True}),
    ("resize_rootfs: noblock", {"resize_rootfs": True}),
    ("resize_rootfs: no", {"resize_rootfs": False}),
    ("runcmd: [ls, [echo, a b], [sleep, 5]]", {"runcmd": ["ls", ["echo", "a b"],
                                                          ["sleep", "5"]]}),
    ("bootcmd: ['echo $x']", {"bootcmd": ["echo $x"]}),
    ("runcmd:", {}),  # nothing under the key: nothing, no warning
]


@pytest.mark.parametrize("text, expected", GOOD)
def test_good_values_are_kept(text, expected):
    assert cc(text) == (expected, [])


BAD = [
    ("users: 5", "users", "a list of users"),
    ("users: {name: bob}", "users", "a list of users"),
    ("ssh_authorized_keys: [1, 2]", "ssh_authorized_keys", "a list of strings"),
    ("ssh_authorized_keys: {a: b}", "ssh_authorized_keys", "a list of strings"),
    ("hostname: [a, b]", "hostname", "a string"),
    ("hostname: 1234", "hostname", "a string"),
    ("fqdn: {a: 1}", "fqdn", "a string"),
    ("preserve_hostname: maybe", "preserve_hostname", "true or false"),
    ("package_update: 'y'", "package_update", "true or false"),  # not cloud-init's word
    ("package_upgrade: 2", "package_upgrade", "true or false"),
    ("write_files: /etc/x", "write_files", "a list of files"),
    ("runcmd: echo hi", "runcmd", "a list of commands"),
    ("bootcmd: {a: 1}", "bootcmd", "a list of commands"),
    ("manage_resolv_conf: 2", "manage_resolv_conf", "true or false"),
    ("resolv_conf: [1.1.1.1]", "resolv_conf", "a mapping"),
    ("growpart: auto", "growpart", "a mapping"),
    ("resize_rootfs: sometimes", "resize_rootfs", "true or false"),
]


@pytest.mark.parametrize("text, key, expected", BAD)
def test_wrong_types_are_dropped_with_a_warning_naming_key_and_type(text, key, expected):
    config, warnings = cc(text + "\nfqdn: kept.example.org" * (key != "fqdn"))
    assert key not in config
    [w] = warnings
    assert f"key {key!r}" in w and f"expected {expected}" in w and "ignored" in w
    if key != "fqdn":
        assert config == {"fqdn": "kept.example.org"}


# -- structured keys: bad fields and items dropped one by one ----------------------

def test_users():
    config, warnings = cc("""
users:
  - default
  - bob
  - name: alice
    sudo: ALL=(ALL) NOPASSWD:ALL
    shell: /bin/zsh
    groups: adm, wheel
    lock_passwd: false
    ssh_authorized_keys: [ssh-ed25519 AAAA alice]
  - name: carol
    sudo: [ALL=(ALL) ALL, "ALL=(ALL) NOPASSWD: /bin/ls"]
    groups: [docker]
  - name: dave
    sudo: false
  - name: erin
    sudo: true
    lock_passwd: "no"
    shell: [bash]
    passwd: $6$secret
    uid: 1234
  - sudo: ALL
  - [nested]
  - 5
""")
    assert config["users"] == [
        "default",
        {"name": "bob"},
        {"name": "alice", "sudo": "ALL=(ALL) NOPASSWD:ALL", "shell": "/bin/zsh",
         "groups": ["adm", "wheel"], "lock_passwd": False,
         "ssh_authorized_keys": ["ssh-ed25519 AAAA alice"]},
        {"name": "carol", "sudo": ["ALL=(ALL) ALL", "ALL=(ALL) NOPASSWD: /bin/ls"],
         "groups": ["docker"]},
        {"name": "dave", "sudo": False},
        {"name": "erin", "uid": 1234},
    ]
    text = "\n".join(warnings)
    assert "users entry 6 ('erin'): 'passwd' refused: the password hash is unusable" in text
    assert "'sudo' should be a sudoers rule" in text
    assert "'lock_passwd' should be true or false" in text
    assert "'shell' should be an absolute path to a shell" in text
    assert "users entry 7 has no user name; skipped" in text
    assert "users entry 8 is a list" in text and "users entry 9 is a number" in text
    assert "$6$secret" not in text  # field names, never values


def test_users_as_a_comma_string():
    assert cc("users: default, bob")[0] == {"users": ["default", {"name": "bob"}]}


def test_write_files_fields():
    config, warnings = cc("""
write_files:
  - path: /etc/a
    content: hello
    encoding: B64
    permissions: '0600'
    owner: bob:bob
    append: true
    defer: no
  - path: /etc/b
    permissions: 0644
  - path: /etc/c
    permissions: rwxr-xr-x
    encoding: rot13
    append: sometimes
    source: {uri: http://x}
  - content: no path
  - just a string
""")
    assert config["write_files"] == [
        {"path": "/etc/a", "content": "hello", "encoding": "b64", "permissions": "0600",
         "owner": "bob:bob", "append": True, "defer": False},
        {"path": "/etc/b", "permissions": 0o644},  # YAML 1.1 reads 0644 as octal
        {"path": "/etc/c"},
    ]
    text = "\n".join(warnings)
    assert "write_files entry 3: fields guestagent does not support, ignored: source" in text
    assert "'permissions' should be an octal mode" in text
    assert "'encoding' should be one of b64, base64, gzip, gz, gz+b64" in text
    assert "'append' should be true or false" in text
    assert "write_files entry 4 has no path; skipped" in text
    assert "write_files entry 5 is a string, not a mapping; skipped" in text


def test_commands_drop_bad_entries():
    config, warnings = cc("runcmd: [ok, [], [a, {b: c}], yes, 3, [echo, 1.5]]")
    assert config == {"runcmd": ["ok", ["echo", "1.5"]]}
    assert len(warnings) == 4
    assert all("#cloud-config runcmd entry" in w for w in warnings)


def test_resolv_conf_and_growpart_fields():
    config, warnings = cc("resolv_conf: {nameservers: 5, domain: a.org, sortlist: [x]}\n"
                          "growpart: {mode: 7, devices: [/], ignore_growroot_disable: true}")
    assert config == {"resolv_conf": {"domain": "a.org"}, "growpart": {"devices": ["/"]}}
    text = "\n".join(warnings)
    assert "'nameservers' should be a list of strings" in text
    assert "resolv_conf: fields guestagent does not support, ignored: sortlist" in text
    assert "'mode' should be a mode string" in text
    assert "fields guestagent does not support, ignored: ignore_growroot_disable" in text


# -- unknown keys, documents that are not mappings, bad YAML ---------------------

def test_unknown_keys_are_named_in_one_warning():
    """cloud-init's keys the agent lacks in one note, keys nobody knows (typos) in another."""
    config, warnings = cc("puppet: {}\nhostname: h\nchef: {}\n1: x\nlandscape: {}\n"
                          "update: true\n")
    assert config == {"hostname": "h"}
    assert warnings == ["#cloud-config keys guestagent does not support, ignored: "
                        "chef, landscape, puppet",
                        "#cloud-config keys neither guestagent nor cloud-init knows (a typo?), "
                        "ignored: 1, update"]
    assert all(w.kind == "unsupported" for w in warnings)


def test_fields_cloud_init_does_not_know_get_the_right_spelling():
    """`mode`/`permission` for write_files' `permissions`, `ssh_pwauth` inside a user:
    cloud-init ignores them too; the note says what to write, and they stay not done."""
    _, warnings = cc("write_files:\n  - {path: /etc/a, mode: '0600'}\n"
                     "  - {path: /etc/b, permission: '0440'}\n"
                     "users: [{name: u, ssh_pwauth: false}]\n")
    assert len(warnings) == 3 and all(w.kind == "unsupported" for w in warnings)
    assert "entry 1: 'mode' is not a cloud-init field" in warnings[0]
    assert "the field is 'permissions'" in warnings[1]
    assert "'ssh_pwauth' is not a cloud-init field" in warnings[2]
    assert "top-level key" in warnings[2]


@pytest.mark.parametrize("text, what", [("- a\n- b", "a list"), ("just text", "a string"),
                                        ("42", "a number")])
def test_document_that_is_not_a_mapping(text, what):
    config, [w] = cc(text)
    assert config == {} and f"is {what}, not a mapping" in w


def test_invalid_yaml_says_where():
    config, [w] = cc("hostname: a\nruncmd: [unclosed\n")
    assert config == {} and "not valid YAML" in w and "line" in w


def test_invalid_yaml_names_the_key_and_unrendered_template_syntax():
    """Terraform's %{ for } left in: the line, the key it breaks and why, no text shown."""
    _, [w] = cc("hostname: a\nruncmd:\n%{ for c in cmds ~}\n  - ${c}\n%{ endfor ~}\n")
    assert "not valid YAML" in w and "at line 4, column 2" in w
    assert "in key 'runcmd'" in w
    assert "line 4 holds template syntax (%{...}): the template was not rendered" in w
    assert "for c in" not in w and w.kind == "invalid"
    _, [w] = cc("hostname: {{ vmname }}\n")
    assert "in key 'hostname'" in w and "({{ ... }})" in w


def test_invalid_yaml_names_an_unquoted_alias():
    """`password: ******` (a redacted value) is a YAML alias: say so, not only the column."""
    _, [w] = cc("users:\n  - name: u\n    password: ******\n")
    assert "in key 'users'" in w
    assert "the value on line 4 starts with '*'" in w and "quote the value" in w


def test_a_string_where_a_boolean_belongs_names_a_placeholder():
    _, [w] = cc("package_upgrade: ${update}\n")
    assert "expected true or false, got a string that looks like an unfilled template " \
           "placeholder (${...})" in w


def test_yaml_tags_that_build_objects_are_refused():
    config, [w] = cc("hostname: !!python/object/apply:os.system [echo pwned]\n")
    assert config == {} and "not valid YAML" in w


def test_empty_cloud_config_is_nothing():
    assert cc("") == ({}, [])
    assert cc("# just a comment\n") == ({}, [])


# -- several #cloud-config parts ---------------------------------------------------

def test_parts_merge_later_wins_and_lists_append():
    m = MIMEMultipart()
    m.attach(MIMEText("#cloud-config\nhostname: first\nruncmd: [one]\nbootcmd: [b1]\n"
                      "users: [default]\nssh_authorized_keys: [k1]\n"
                      "write_files: [{path: /a}]\nresolv_conf: {domain: a.org}\n"
                      "manage_resolv_conf: true\n", "plain"))
    m.attach(MIMEText("hostname: second\nruncmd: [two]\nbootcmd: [b2]\nusers: [bob]\n"
                      "ssh_authorized_keys: [k2]\nwrite_files: [{path: /b}]\n"
                      "resolv_conf: {nameservers: [192.0.2.1]}\nlandscape: {x: 1}\n",
                      "cloud-config"))
    m.attach(MIMEText("#cloud-config\nruncmd: 5\nweird: 1\n", "cloud-config"))
    ud = decode(m.as_bytes(), MAX)
    assert ud.cloud_config == {
        "hostname": "second",
        "runcmd": ["one", "two"],
        "bootcmd": ["b1", "b2"],
        "users": ["default", {"name": "bob"}],
        "ssh_authorized_keys": ["k1", "k2"],
        "write_files": [{"path": "/a"}, {"path": "/b"}],
        "resolv_conf": {"nameservers": ["192.0.2.1"]},  # top-level keys: later wins whole
        "manage_resolv_conf": True,
    }
    assert len(ud.warnings) == 3
    assert "'runcmd': expected a list of commands" in ud.warnings[0]
    assert ud.warnings[1].endswith("does not support, ignored: landscape")
    assert ud.warnings[2].endswith("(a typo?), ignored: weird")
