"""decode(): gzip, MIME multipart, part types, size caps, hostile input."""

import base64
import gzip
import logging
import os
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guestagent.userdata import decode

MAX = 1 << 20


def mime(*parts):
    m = MIMEMultipart()
    for p in parts:
        m.attach(p)
    return m.as_bytes()


def part(text, subtype, filename=None, charset="us-ascii"):
    p = MIMEText(text, subtype, charset)
    if filename:
        p.add_header("Content-Disposition", "attachment", filename=filename)
    return p


def test_empty_user_data_is_nothing_and_no_warning():
    for raw in (b"", b"   \n"):
        ud = decode(raw, MAX)
        assert (ud.scripts, ud.cloud_config, ud.warnings) == ([], {}, [])


def test_plain_script():
    ud = decode(b"#!/bin/sh\necho hi\n", MAX)
    [s] = ud.scripts
    assert (s.name, s.content, s.index) == ("part-001", b"#!/bin/sh\necho hi\n", 1)
    assert ud.cloud_config == {} and ud.warnings == []


def test_byte_order_mark_is_dropped():
    ud = decode(b"\xef\xbb\xbf#!/bin/sh\ntrue\n", MAX)
    assert ud.scripts[0].content == b"#!/bin/sh\ntrue\n"


def test_cloud_config():
    ud = decode(b"#cloud-config\nhostname: web1\npreserve_hostname: no\n", MAX)
    assert ud.cloud_config == {"hostname": "web1", "preserve_hostname": False}
    assert ud.scripts == [] and ud.warnings == []


def test_gzip_is_found_by_its_magic_bytes():
    ud = decode(gzip.compress(b"#!/bin/bash\necho gz\n"), MAX)
    assert ud.scripts[0].content == b"#!/bin/bash\necho gz\n"


def test_gzip_bomb_stops_at_max_bytes():
    bomb = gzip.compress(b"#!/bin/sh\n" + b"\0" * (50 << 20))  # 50 MB of zeros, ~50 KB
    assert len(bomb) < 100_000
    ud = decode(bomb, 1 << 20)
    assert ud.scripts == []
    assert any("more than [userdata] max_bytes = 1048576" in w for w in ud.warnings)


def test_gzip_just_under_the_cap_is_fine():
    data = b"#!/bin/sh\n" + b"#" * 990
    assert decode(gzip.compress(data), 1000).scripts[0].content == data
    assert decode(gzip.compress(data + b"#"), 1000).scripts == []


def test_truncated_gzip_is_a_warning():
    ud = decode(gzip.compress(b"#!/bin/sh\necho hi\n" * 100)[:30], MAX)
    assert ud.scripts == [] and "gzip" in ud.warnings[0]


def test_oversize_input_is_refused_whole():
    ud = decode(b"#!/bin/sh\n" + b"x" * 2000, 1000)
    assert ud.scripts == []
    assert ud.warnings == ["user-data is 2010 bytes, more than [userdata] max_bytes = 1000; "
                           "none of it is used"]


def test_mime_multipart_scripts_and_cloud_config_in_order():
    raw = mime(part("#!/bin/sh\necho one\n", "x-shellscript"),
               part("runcmd: [echo two]\nhostname: a\n", "cloud-config"),
               part("#!/bin/sh\necho three\n", "x-shellscript", "setup.sh", charset="utf-8"),
               part("#cloud-config\nruncmd: [[echo, four]]\nhostname: b\n", "plain"))
    ud = decode(raw, MAX)
    assert [(s.name, s.index) for s in ud.scripts] == [("part-001", 1), ("setup.sh", 3)]
    assert ud.scripts[1].content == b"#!/bin/sh\necho three\n"  # base64 transfer encoding
    assert ud.cloud_config == {"runcmd": ["echo two", ["echo", "four"]], "hostname": "b"}
    assert ud.warnings == []


def test_mime_transfer_encodings_are_honoured():
    qp = MIMEText("#!/bin/sh\necho caf\u00e9 = ok\n", "x-shellscript", "utf-8")
    del qp["Content-Transfer-Encoding"]
    from email import charset, encoders
    qp.set_payload("#!/bin/sh\necho caf\u00e9 = ok\n".encode())
    encoders.encode_quopri(qp)
    assert b"=3D" in qp.as_bytes()
    ud = decode(mime(qp), MAX)
    assert ud.scripts[0].content == "#!/bin/sh\necho caf\u00e9 = ok\n".encode()
    assert charset  # imported for the encoders above


def test_nested_multipart_and_gzip_part():
    inner = MIMEMultipart("alternative")
    inner.attach(part("#!/bin/sh\necho inner\n", "x-shellscript"))
    gz = MIMEApplication(gzip.compress(b"#!/bin/sh\necho zipped\n"), "gzip")
    ud = decode(mime(part("#!/bin/sh\necho outer\n", "x-shellscript"), inner, gz), MAX)
    assert [s.content.split(b"\n")[1] for s in ud.scripts] == [
        b"echo outer", b"echo inner", b"echo zipped"]
    assert [s.index for s in ud.scripts] == [1, 2, 3]


def test_gzipped_mime():
    raw = gzip.compress(mime(part("#!/bin/sh\necho one\n", "x-shellscript")))
    assert decode(raw, MAX).scripts[0].content == b"#!/bin/sh\necho one\n"


@pytest.mark.parametrize("raw, named", [
    (b"#include\nhttp://example.com/x\n", "#include (text/x-include-url)"),
    (b"#include-once\nhttp://example.com/x\n", "#include-once"),
    (b"#cloud-boothook\n#!/bin/sh\necho\n", "#cloud-boothook (text/cloud-boothook)"),
    (b"#upstart-job\ndescription x\n", "#upstart-job"),
    (b"#part-handler\ndef list_types(): pass\n", "#part-handler (text/part-handler)"),
    (b"#cloud-config-archive\n- type: foo\n", "#cloud-config-archive"),
])
def test_unsupported_formats_are_warned_by_name(raw, named):
    ud = decode(raw, MAX)
    assert ud.scripts == [] and ud.cloud_config == {}
    [w] = ud.warnings
    assert named in w and "not support" in w


@pytest.mark.parametrize("subtype", ["x-include-url", "part-handler", "upstart-job",
                                     "cloud-boothook", "jinja2", "x-something-else"])
def test_unsupported_mime_types_are_warned_by_name_and_the_rest_used(subtype):
    raw = mime(part("whatever\n", subtype), part("#!/bin/sh\necho ok\n", "x-shellscript"))
    ud = decode(raw, MAX)
    assert len(ud.scripts) == 1 and ud.scripts[0].index == 2
    [w] = ud.warnings
    assert f"text/{subtype}" in w and "user-data part 1" in w


def test_shellscript_part_without_shebang_is_not_run():
    ud = decode(mime(part("echo no shebang\n", "x-shellscript")), MAX)
    assert ud.scripts == []
    assert "does not start with #!" in ud.warnings[0]


@pytest.mark.parametrize("raw", [bytes(range(256)) * 4, b"\x00\x01\x02ELF\x7f\xff" * 10,
                                 b"\x89PNG\r\n\x1a\n" + bytes(200)])
def test_binary_junk_is_a_warning_and_nothing_runs(raw):
    ud = decode(raw, MAX)
    assert ud.scripts == [] and ud.cloud_config == {}
    [w] = ud.warnings
    assert "binary data" in w and "nothing run" in w


def test_plain_text_is_a_warning():
    [w] = decode(b"echo hello\n", MAX).warnings
    assert "plain text" in w and "no #!" in w


def test_broken_boundary_is_a_warning():
    raw = (b'Content-Type: multipart/mixed; boundary="XYZ"\nMIME-Version: 1.0\n\n'
           b"--ABC\nContent-Type: text/x-shellscript\n\n#!/bin/sh\necho hi\n--ABC--\n")
    ud = decode(raw, MAX)
    assert ud.scripts == []
    assert ud.warnings  # the part could not be found: said, not run


def test_too_many_parts_are_cut_with_a_warning():
    raw = mime(*[part("#!/bin/sh\ntrue\n", "x-shellscript") for _ in range(520)])
    ud = decode(raw, 10 * MAX)
    assert len(ud.scripts) == 500
    assert any("more than 500 MIME parts" in w for w in ud.warnings)


def test_warnings_are_logged_without_user_data_contents(caplog):
    secret = "hunter2-very-secret"
    with caplog.at_level(logging.WARNING, logger="guestagent.userdata"):
        decode(f"#cloud-config\npassword: \"{secret}\\nx\"\nchpasswd: {{list: "
               f"['bad name:{secret}', 'bob:{secret}\\r'], users: [{{name: bob, "
               f"password: {secret}}}]}}\nchef: {{x: {secret}}}\n".encode(), MAX)
        decode(f"#cloud-config\nhostname: [{secret}\n".encode(), MAX)
        decode(f"not a script {secret}\n".encode(), MAX)
    text = caplog.text
    assert "'password': expected a usable password (it contains a line break" in text
    assert "chpasswd list entry 1: user name 'bad name' is not a valid" in text
    assert "chpasswd users entry 1 (bob): the password is unusable" in text
    assert "not valid YAML" in text and "ignored: chef" in text
    assert secret not in text


# -- hostile input: never an exception ------------------------------------------

def _check_shape(ud):
    assert isinstance(ud.cloud_config, dict) and isinstance(ud.warnings, list)
    # decode() catches everything as a last defence; an input that reaches it
    # is a parser bug the shape alone would hide (empty result, no crash)
    assert not [w for w in ud.warnings if "could not be decoded" in w], ud.warnings
    for s in ud.scripts:
        assert s.content.startswith(b"#!") and isinstance(s.name, str) and s.index >= 1
    assert set(ud.cloud_config) <= {
        "users", "ssh_authorized_keys", "hostname", "fqdn", "preserve_hostname",
        "write_files", "runcmd", "bootcmd", "manage_resolv_conf", "resolv_conf",
        "growpart", "resize_rootfs"}


# GUESTAGENT_FUZZ_EXAMPLES=5000 for a longer hunt than the suite's quick one
FAST = settings(max_examples=int(os.environ.get("GUESTAGENT_FUZZ_EXAMPLES", "150")),
                deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(raw):
    _check_shape(decode(raw, 4096))


@FAST
@given(st.binary(max_size=500))
def test_random_gzip_never_raises(raw):
    _check_shape(decode(gzip.compress(raw), 4096))
    _check_shape(decode(b"\x1f\x8b" + raw, 4096))


_headers = st.sampled_from([
    "Content-Type: text/x-shellscript", "Content-Type: text/cloud-config",
    "Content-Type: multipart/mixed; boundary=B", "Content-Type: multipart/mixed",
    "Content-Transfer-Encoding: base64", "Content-Transfer-Encoding: quoted-printable",
    "Content-Transfer-Encoding: x-uuencode", "Content-Type: application/gzip",
    "Content-Disposition: attachment; filename=\"../../etc/passwd\"",
    "Content-Type: text/plain; charset=\"unknown-8bit\"", "MIME-Version: 1.0", "--B", "--B--"])
_bodies = st.sampled_from(["#!/bin/sh\necho x", "#cloud-config\nruncmd: [x]", "IyEvYmlu",
                           "=3D=\n", "begin 644 x\n`\nend", "", "\x00\xff", "hostname: [",
                           "#cloud-config\nusers: [{name: 1}]\nwrite_files: 5"])


@FAST
@given(st.lists(st.one_of(_headers, _bodies, st.text(max_size=40)), max_size=30))
def test_random_mime_never_raises(lines):
    raw = "\n".join(["MIME-Version: 1.0", "Content-Type: multipart/mixed; boundary=B", ""]
                    + lines).encode("utf-8", "surrogatepass")
    ud = decode(raw, 1 << 16)
    _check_shape(ud)
    for s in ud.scripts:
        assert "/" not in s.name and not s.name.startswith(".")


@FAST
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                    lambda c: st.lists(c, max_size=4)
                    | st.dictionaries(st.sampled_from(
                        ["users", "name", "sudo", "groups", "write_files", "path", "content",
                         "runcmd", "bootcmd", "resolv_conf", "options", "growpart", "mode",
                         "devices", "hostname", "permissions", "encoding", "x"]), c,
                        max_size=5), max_leaves=30))
def test_random_cloud_config_values_never_raise(doc):
    import yaml
    raw = b"#cloud-config\n" + yaml.safe_dump({"users": doc, "write_files": doc, "runcmd": doc,
                                               "resolv_conf": doc, "growpart": doc,
                                               "hostname": doc}).encode()
    _check_shape(decode(raw, MAX))


def test_deeply_nested_yaml_is_a_warning():
    ud = decode(b"#cloud-config\nruncmd: " + b"[" * 100_000 + b"\n", MAX)
    assert ud.cloud_config == {} and ud.warnings


def test_base64_user_data_is_not_guessed():
    # EC2 hands user-data over already decoded; a base64 blob is plain text to us
    raw = base64.b64encode(b"#!/bin/sh\necho x\n")
    ud = decode(raw, MAX)
    assert ud.scripts == [] and "plain text" in ud.warnings[0]


@pytest.mark.parametrize("raw", [
    b"#cloud-config\nruncmd:\n" + b"- " * 100_000 + b"x\n",
    b"#cloud-config\na: " + b"{a: " * 50_000 + b"1" + b"}" * 50_000 + b"\n",
])
def test_deep_yaml_nesting_of_every_kind_is_refused_before_loading(raw):
    # libyaml's loader recurses in C: without the depth check this kills the process
    ud = decode(raw, 1 << 24)
    assert ud.cloud_config == {} and "more than 50 deep" in ud.warnings[0]


def test_deeply_nested_mime_is_a_warning():
    raw = b"MIME-Version: 1.0\n"
    for i in range(3000):
        raw += f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n'.encode()
    raw += b"Content-Type: text/x-shellscript\n\n#!/bin/sh\necho deep\n"
    ud = decode(raw, MAX)
    assert isinstance(ud.scripts, list) and ud.warnings


def test_utf16_user_data_gets_a_hint():
    [w] = decode("#!/bin/sh\necho hi\n".encode("utf-16"), MAX).warnings
    assert "UTF-16 text (save it as UTF-8)" in w


def test_single_part_mime_with_transfer_encoding():
    raw = (b"Content-Type: text/x-shellscript\nContent-Transfer-Encoding: base64\n\n"
           b"IyEvYmluL3NoCmVjaG8gYjY0Cg==\n")
    [s] = decode(raw, MAX).scripts
    assert s.content == b"#!/bin/sh\necho b64\n"
