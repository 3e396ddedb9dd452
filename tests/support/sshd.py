"""What sshd itself makes of a scratch root's configuration (``sshd -T -f``)."""

import os
import subprocess

SSHD = "/usr/sbin/sshd"


def available():
    return os.path.exists(SSHD)


def sshd_t(root):
    """sshd -T's {keyword: value} for ROOT/etc/ssh/sshd_config, its /etc/ssh/
    paths (Include lines) pointed into the root."""
    conf = root / "etc/ssh/sshd_config"
    text = conf.read_text().replace("/etc/ssh/", f"{root}/etc/ssh/")
    test_conf = root / "sshd-test.conf"
    test_conf.write_text(text)
    key = root / "hostkey"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    # sshd -T wants /run/sshd: made on a tmpfs of a mount namespace of the test's own
    res = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                          'mount -t tmpfs tmpfs /run && mkdir /run/sshd && exec "$@"', "sh",
                          SSHD, "-T", "-f", test_conf, "-h", key],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return dict(ln.split(" ", 1) for ln in res.stdout.splitlines() if " " in ln)
