"""Boot with the accounts side of #cloud-config and log in with a password.

Scenario f: a config drive whose #cloud-config sets a user's password with
chpasswd, a RANDOM password for the default user, ssh_pwauth: true and
disable_root: true.  The image is first made to refuse passwords the way
cloud images do (a bootcmd drops ``PasswordAuthentication no`` into
sshd_config.d/50-cloud-init.conf), so the login proves that the agent's
setting is the one sshd uses.  Password logins go through ssh itself with an
askpass script (SSH_ASKPASS_REQUIRE=force): no key, no sshpass.
"""

import os
import re
import subprocess
import uuid

import pytest
from test_boot import DISK, check_no_failed_units, check_status_ok, write_instance

import harness

pytestmark = [pytest.mark.e2e, pytest.mark.root]

PASSWORD = "E2e-pw-Sw0rdfish"
BEGIN = "-----BEGIN GUESTAGENT RANDOM PASSWORDS-----"
END = "-----END GUESTAGENT RANDOM PASSWORDS-----"

CLOUD_CONFIG = f"""\
#cloud-config
bootcmd:
  - mkdir -p /etc/ssh/sshd_config.d
  - echo 'PasswordAuthentication no' > /etc/ssh/sshd_config.d/50-cloud-init.conf
users:
  - default
  - name: pwuser
    gecos: Password User
    shell: /bin/bash
    lock_passwd: false
chpasswd:
  expire: false
  users:
    - {{name: pwuser, password: "{PASSWORD}", type: text}}
    - {{name: debian, type: RANDOM}}
ssh_pwauth: true
disable_root: true
final_message: "e2e accounts boot done after $UPTIME seconds"
"""


@pytest.fixture(scope="class")
def pw_guest(plain_image, keys, e2e_dir):
    d = e2e_dir / "accounts"
    u = str(uuid.uuid4())
    user = harness.public_key(keys["user"])
    tree = write_instance(d / "drive", u, "pw-guest.novalocal", [user],
                          user_data=CLOUD_CONFIG.encode())
    iso = harness.config_drive_iso(tree, d / "config-2.iso")
    with harness.Guest(plain_image, d / "vm", "accounts", key=keys["user"],
                       root_key=keys["debug"], config_drive=iso, disk_size=DISK,
                       instance_uuid=u) as g:
        g.wait_ssh()
        g.report_boot()
        yield g


def password_ssh(guest, user, password, cmd, tmp_path):
    """Log in with a password only (no key offered), answering through an askpass script."""
    askpass = tmp_path / f"askpass-{user}"
    secret = tmp_path / f"secret-{user}"
    secret.write_text(password)
    os.chmod(secret, 0o600)
    askpass.write_text(f"#!/bin/sh\ncat {secret}\n")
    os.chmod(askpass, 0o700)
    argv = guest.ns.prefix() + [
        "ssh", "-p", str(harness.SSH_PORT),
        "-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password",
        "-o", "NumberOfPasswordPrompts=1", "-o", "IdentitiesOnly=yes", "-o", "IdentityFile=none",
        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
        "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=20",
        f"{user}@127.0.0.1", "--", cmd]
    env = dict(os.environ, SSH_ASKPASS=str(askpass), SSH_ASKPASS_REQUIRE="force",
               DISPLAY=":0")
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env,
                          stdin=subprocess.DEVNULL)


class TestAccounts:
    def test_password_login_with_the_chpasswd_password(self, pw_guest, tmp_path):
        res = password_ssh(pw_guest, "pwuser", PASSWORD, "id -un; getent passwd pwuser",
                           tmp_path)
        assert res.returncode == 0, res.stderr
        name, entry = res.stdout.splitlines()
        assert name == "pwuser" and ":Password User:" in entry

    def test_a_wrong_password_is_refused(self, pw_guest, tmp_path):
        res = password_ssh(pw_guest, "pwuser", PASSWORD + "x", "true", tmp_path)
        assert res.returncode != 0

    def test_sshd_uses_the_agents_setting_over_the_images(self, pw_guest):
        out = pw_guest.ssh("sudo -n sshd -T | grep -i '^passwordauthentication'").stdout
        assert out.strip() == "passwordauthentication yes"
        files = pw_guest.ssh("ls /etc/ssh/sshd_config.d/").stdout.split()
        assert files == ["00-guestagent.conf", "50-cloud-init.conf"]

    def test_random_password_once_on_the_console_and_it_works(self, pw_guest, tmp_path):
        console = pw_guest.console_text().replace("\r", "")
        assert console.count(BEGIN) == 1, pw_guest.console_tail()
        block = console[console.index(BEGIN) + len(BEGIN):console.index(END)]
        [line] = [ln for ln in block.splitlines() if ln.strip()]
        user, random_pw = line.split(":", 1)
        assert user == "debian" and len(random_pw) == 20
        res = password_ssh(pw_guest, "debian", random_pw, "id -un", tmp_path)
        assert res.returncode == 0 and res.stdout.strip() == "debian", res.stderr
        # never in the journal or a log file (the password goes to the guest on stdin:
        # sudo would log a command line holding it)
        found = pw_guest.ssh("sudo -n sh -c 'read -r pw; journalctl -b --no-pager | "
                             "grep -c -F -- \"$pw\"; grep -rlF -- \"$pw\" /var/log "
                             "/var/lib/guestagent || true'", input=random_pw + "\n",
                             check=False).stdout.split()
        assert found == ["0"], found

    def test_disable_root_refuses_root_with_the_instance_key(self, pw_guest, keys):
        res = pw_guest.ssh("id -un", user="root", key=keys["user"], check=False)
        assert res.returncode == 142, (res.returncode, res.stdout, res.stderr)
        assert 'Please login as the user "debian" rather than the user "root".' in res.stdout
        # the image builder's own root key is kept as it was
        assert pw_guest.ssh("id -un", user="root", key=keys["debug"]).stdout.strip() == "root"

    def test_final_message_on_the_console(self, pw_guest):
        console = pw_guest.console_text()
        assert re.search(r"final message: e2e accounts boot done after [0-9.]+ seconds",
                         console), pw_guest.console_tail()

    def test_status_all_ok(self, pw_guest):
        check_status_ok(pw_guest, final=True)

    def test_no_failed_units(self, pw_guest):
        check_no_failed_units(pw_guest)
