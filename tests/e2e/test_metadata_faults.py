"""A metadata service that misbehaves, on real boots (issue 29, part 3).

The default image (Debian 12, systemd, ext4 on virtio) boots with no config
drive, so the network stage asks the project's metadata server at
169.254.169.254 (DMI "OpenStack Nova": the agent waits its whole deadline,
[main] deadline, 120 s by default), which misbehaves:

  metadata-trickling  every response body dripped a byte at a time, 10 bytes
                      a second (metadata_server.py --drip 10): the search
                      ends by the deadline (read whole, or given up
                      mid-response) and the boot goes on
  metadata-absent     every connection accepted and never answered
                      (--stall-first N --stall 3600): the agent gives up at
                      the deadline, says in one line why there are no keys,
                      sshd starts, `guestagent status` exits non-zero

(The flapping service is tests/e2e/test_flapping.py.)  Where no key went in,
the checks log in with the root key baked into the test image (as an
operator with a way in of their own would).  Logs:
/var/tmp/guestagent-e2e-logs/<scenario>/.
"""

import uuid

import pytest
from checks import DISK, write_instance

import harness

pytestmark = [pytest.mark.e2e, pytest.mark.root]

DEADLINE = 120  # [main] deadline's default
MATRIX = {
    "metadata-trickling": dict(image={}, ci=False, server=["--drip", "10"]),
    "metadata-absent": dict(image={}, ci=False,
                            server=["--stall-first", "1000000", "--stall", "3600"]),
}


@pytest.fixture(scope="class", params=sorted(MATRIX))
def faulty_guest(request, plain_image, keys, e2e_dir):
    name = request.param
    d = e2e_dir / name
    u = str(uuid.uuid4())
    tree = write_instance(d / "tree", u, f"{name}.novalocal",
                          [harness.public_key(keys["user"])])
    with harness.Guest(plain_image, d / "vm", name, key=keys["user"], root_key=keys["debug"],
                       metadata_tree=tree, disk_size=DISK, instance_uuid=u,
                       metadata_args=MATRIX[name]["server"]) as g:
        # sshd comes up whether or not a key went in: wait for it through
        # the image's root key, then see whether the user's key works
        g.wait_ssh(user="root", key=keys["debug"])
        g.root_ssh_at = g.time_to_ssh
        res = g.ssh("true", check=False)
        g.key_in = res.returncode == 0
        yield g


def root(guest, cmd, check=True):
    return guest.ssh(cmd, user="root", key=guest.root_key, check=check)


def agent_lines(guest):
    text = guest.console_text().replace("\r", "")
    return [ln for ln in text.splitlines() if "guestagent: " in ln]


def unit_seconds(guest, unit):
    """Seconds from the unit's start to its READY=1 / exit (systemd's own clock)."""
    out = root(guest, f"systemctl show -p ExecMainStartTimestampMonotonic "
                      f"-p ActiveEnterTimestampMonotonic {unit}").stdout
    v = dict(ln.split("=", 1) for ln in out.split())
    return (int(v["ActiveEnterTimestampMonotonic"])
            - int(v["ExecMainStartTimestampMonotonic"])) / 1e6


def sshd_started_at(guest):
    """Seconds after the kernel started that sshd was up (systemd's clock)."""
    out = root(guest, "systemctl show -p ActiveEnterTimestampMonotonic ssh.service").stdout
    return int(out.split("=", 1)[1]) / 1e6


class TestMisbehavingService:
    def test_the_deadline_holds_and_the_boot_goes_on(self, faulty_guest):
        g = faulty_guest
        state = root(g, "systemctl is-system-running --wait", check=False).stdout.strip()
        lines = agent_lines(g)
        text = "\n".join(lines)
        took = unit_seconds(g, "guestagent.service")
        sshd = sshd_started_at(g)
        print(f"[e2e] {g.name}: key {'in' if g.key_in else 'not in'}; guestagent.service "
              f"{took:.1f} s to READY; sshd up {sshd:.1f} s after boot; root login after "
              f"{g.root_ssh_at:.1f} s; system {state}\n" + text, flush=True)
        assert "Traceback" not in g.console_text()
        # the search ends by the deadline; growroot and host keys may follow it
        assert took < DEADLINE + 60, took
        found = [ln for ln in lines if "found instance" in ln]
        none = [ln for ln in lines if "no datasource found" in ln]
        assert found or none, text
        if found:
            assert g.key_in, "the metadata was found, but the key does not log in"
        else:
            assert len(none) == 1 and "gave up at the deadline" in none[0], none
            assert "no SSH keys" in none[0], none
            assert not g.key_in
        res = root(g, "guestagent status; echo exit=$?", check=False).stdout
        if g.name == "metadata-absent":
            assert none and not found, text
            assert "exit=0" not in res, res
        assert root(g, "systemctl is-active ssh.service", check=False).stdout.strip() == \
            "active"
        if g.name == "metadata-trickling":
            # (the stalling server logs a request only once it answers: never)
            assert g.metadata_requests(), "the server saw no request"
        else:
            assert any("does not answer" in ln for ln in lines), text
        failed = [ln.split()[0] for ln in root(g, "systemctl --failed --no-legend "
                                                  "--plain").stdout.splitlines() if ln.strip()]
        if none:
            # no metadata is a failure an operator must see: the unit that
            # looked for it exits 3 (no datasource) and shows as failed
            main_pid_exit = root(g, "systemctl show -p ExecMainStatus guestagent.service"
                                 ).stdout.strip()
            assert main_pid_exit == "ExecMainStatus=3", main_pid_exit
            failed = [u for u in failed if u != "guestagent.service"]
        assert not failed, failed
