"""Instance data and checks shared by the boot scenarios (test_boot.py,
test_matrix.py, ...): what a metadata tree holds, and what every booted guest
must show, whatever its Debian release, init, root filesystem or disk bus."""

import email.mime.multipart
import email.mime.text
import json
import re
import subprocess
import time

import harness

GiB = 1024 ** 3
DISK = "3G"
DISK_BYTES = 3 * GiB


# -- instance data --------------------------------------------------------------
def write_instance(tree, instance_uuid, hostname, keys, user_data=None, dns=()):
    base = tree / "openstack" / "latest"
    base.mkdir(parents=True)
    meta = {
        "uuid": instance_uuid, "name": hostname.split(".")[0], "hostname": hostname,
        "availability_zone": "nova", "launch_index": 0, "project_id": "e2e",
        "public_keys": {"e2e": keys[0] + "\n"},
        "keys": [{"name": "e2e", "type": "ssh", "data": keys[0] + "\n"}],
        "meta": {"scenario": hostname},
    }
    (base / "meta_data.json").write_text(json.dumps(meta, indent=1))
    net = {"links": [], "networks": [{"id": "network0", "type": "ipv4_dhcp"}],
           "services": [{"type": "dns", "address": a} for a in dns]}
    (base / "network_data.json").write_text(json.dumps(net, indent=1))
    (base / "vendor_data.json").write_text("{}")
    if user_data is not None:
        (base / "user_data").write_bytes(user_data)
    return tree


CLOUD_CONFIG = """\
#cloud-config
hostname: cd-guest
users:
  - default
  - name: extra
    shell: /bin/bash
    sudo: "ALL=(ALL) NOPASSWD:ALL"
    ssh_authorized_keys:
      - {extra_key}
write_files:
  - path: /etc/e2e/written.conf
    content: |
      written by cloud-config
    permissions: "0640"
runcmd:
  - [sh, -c, "echo runcmd-one > /var/tmp/e2e-runcmd"]
  - echo runcmd-two >> /var/tmp/e2e-runcmd
manage_resolv_conf: true
resolv_conf:
  nameservers: [192.0.2.10, 192.0.2.11]
  searchdomains: [e2e.example]
"""

SCRIPT = """\
#!/bin/sh
# Counts its own runs: user scripts run once per instance.
n=$(cat /var/lib/e2e-script-count 2>/dev/null || echo 0)
echo $((n + 1)) > /var/lib/e2e-script-count
id -u > /var/lib/e2e-script-uid
"""


def multipart(script):
    msg = email.mime.multipart.MIMEMultipart()
    msg.attach(email.mime.text.MIMEText(script, "x-shellscript"))
    return msg.as_bytes()


# -- checks shared by the scenarios ----------------------------------------------
def status(guest):
    res = guest.ssh("sudo -n guestagent status --json")
    return json.loads(res.stdout)


def all_steps(st):
    return [s for run in st.get("runs", []) for s in run.get("steps", [])]


def check_status_ok(guest, final):
    """``final``: whether this boot had scripts or runcmd left to run (the
    final unit starts only then)."""
    st = status(guest)
    runs = st.get("runs", [])
    assert runs, f"guestagent recorded no run in this boot: {st}"
    failed = [s for s in all_steps(st) if s.get("result") == "failed"]
    assert not failed, f"failed steps: {failed}"
    bad = [(r.get("stage"), r.get("exit_code"), r.get("message")) for r in runs
           if r.get("exit_code") != 0]
    assert not bad, f"runs with a non-zero exit: {bad}"
    stages = {r.get("stage") for r in runs}
    assert stages & {"local", "network"}, f"no config stage ran: stages {sorted(stages)}"
    if final:
        assert "final" in stages, f"the final unit did not run: stages {sorted(stages)}"
    else:
        assert "final" not in stages, \
            f"the final unit started with nothing to do: stages {sorted(stages)}"
    guest.ssh("sudo -n guestagent status")
    return st


def check_settled(guest):
    """The boot is over (systemd: is-system-running --wait) and nothing failed;
    checks of state that others own (resolv.conf, units) come after this."""
    state = guest.settle()
    failed = guest.failed_services()
    assert state == "running" and not failed, \
        f"the boot did not settle cleanly: state {state!r}, failed: {failed}"


AGENT_UNITS = ("guestagent-main.service", "guestagent-local.service", "guestagent.service",
               "guestagent-final.service")


def check_no_agent_python_this_boot(guest):
    """A reboot with nothing changed: the boot process's guard (sh + sha256sum)
    skipped it and the stage units, so no guestagent Python ran in this boot
    at all."""
    boot_id = guest.boot_id()
    st = status(guest)  # every agent run records the boot it ran in
    assert st.get("boot_id") != boot_id, f"an agent stage ran in this boot: {st.get('runs')}"
    for unit in AGENT_UNITS:
        started = guest.ssh(f"sudo -n systemctl show -P ExecMainStartTimestampMonotonic {unit}")
        assert started.stdout.strip() in ("", "0"), f"{unit} started its ExecStart= this boot"
    journal = guest.ssh("sudo -n journalctl -b -o cat -u 'guestagent*'").stdout
    assert "nothing to do, not starting" in journal, journal[-2000:]
    assert "the agent did not start" in guest.ssh("sudo -n guestagent status").stdout
    assert not guest.ssh("pgrep -f 'guestagent --(once|boot)'; true").stdout.strip()


def check_local_stage_skipped_without_source(guest):
    """A first boot with no config drive: the local unit's second guard
    (units/guestagent-local-source) found nothing for it to read, so it never
    signalled the boot's process; the network stage configured the instance."""
    started = guest.ssh("sudo -n systemctl show -P ExecMainStartTimestampMonotonic "
                        "guestagent-local.service").stdout.strip()
    assert started in ("", "0"), "guestagent-local.service started its ExecStart= this boot"
    journal = guest.ssh("sudo -n journalctl -b -o cat -u guestagent-local.service").stdout
    assert "the network stage will look" in journal, journal[-2000:]
    runs = status(guest)["runs"]
    assert [r["stage"] for r in runs if r.get("configured")] == ["network"], runs


def check_one_interpreter(guest):
    """Every stage of this boot ran in the boot's one process (guestagent-main):
    the stage units signalled it and ran no stage of their own."""
    journal = guest.ssh("sudo -n journalctl -b -o cat -u 'guestagent*'").stdout
    assert "running the stage here" not in journal, journal[-3000:]
    main = dict(ln.split("=", 1) for ln in guest.ssh(
        "sudo -n systemctl show -p ExecMainPID -p ExecMainStartTimestampMonotonic -p Result "
        "guestagent-main.service").stdout.split())
    assert main["ExecMainStartTimestampMonotonic"] not in ("", "0") and \
        main["Result"] == "success", main
    pids = {r.get("pid") for r in status(guest)["runs"] if r.get("pid")}
    assert pids == {int(main["ExecMainPID"])}, (pids, main)


def check_reboot(guest, first):
    """After a reboot of the same instance with nothing changed: under systemd
    the reboot guard starts no agent at all; elsewhere (SysV, rc.local) the
    agent runs its per-boot steps only.  Returns this boot's status, or None."""
    if guest.image.systemd:
        check_no_agent_python_this_boot(guest)
        return None
    st = check_status_ok(guest, final=False)
    assert not any(r.get("new_instance") for r in st["runs"]), st["runs"]
    check_per_instance_not_rerun(first, st)
    return st


def check_no_failed_units(guest):
    """``systemctl --failed`` is empty (SysV: no init script reported a failure)."""
    failed = guest.failed_services()
    assert not failed, "failed units:\n" + "\n".join(failed)


def check_root_grown(guest, dev=None):
    """The root disk is the flavor's size and / spans it.  ``dev``: the root
    disk (default: the image's, /dev/vda, /dev/nvme0n1 or /dev/sda)."""
    dev = dev or guest.image.root_disk
    disk = int(guest.ssh(f"lsblk -bdno SIZE {dev}").stdout)
    assert disk == DISK_BYTES, f"{dev} is {disk} bytes, expected the overlay's {DISK_BYTES}"
    fs = int(guest.ssh("findmnt -bno SIZE /").stdout)
    # The image's filesystem was 1.5 GiB; grown, it spans the 3 GiB disk less
    # the partition offset and ext4's own metadata.
    assert fs > 0.9 * DISK_BYTES, \
        f"root filesystem is {fs} bytes on a {disk}-byte disk: not grown (image was 1.5 GiB)"
    return fs


def check_host_keys(guest, every_boot=False):
    """The fingerprints on the console match the keys sshd shows a client.
    ``every_boot``: the last block printed in any boot (a power cut may end
    the boot that printed it)."""
    blocks = guest.console_fingerprint_blocks(every_boot)
    assert blocks, "no host key fingerprint block on the console"
    printed = set(re.findall(r"SHA256:[A-Za-z0-9+/=]+", "\n".join(blocks[-1])))
    files = guest.host_public_keys()
    offered = guest.keyscan()
    assert offered, "ssh-keyscan got no host keys"
    assert all(files.get(t) == b for t, b in offered.items()), \
        f"sshd offers keys that are not its key files: {offered} vs {files}"
    seen = {harness.fingerprint(t, b) for t, b in offered.items()}
    assert seen <= printed, \
        f"sshd offers keys {sorted(seen)} but the console printed {sorted(printed)}"
    on_disk = {harness.fingerprint(t, b) for t, b in files.items()}
    assert on_disk == printed, \
        f"host key files {sorted(on_disk)} but the console printed {sorted(printed)}"
    return offered


def check_sudo(guest):
    guest.ssh("sudo -n true")


def authorized_keys(guest, user="debian"):
    return guest.ssh(f"cat ~{user}/.ssh/authorized_keys").stdout


def per_instance_results(st):
    return {s["name"]: s["result"] for s in all_steps(st)
            if s.get("frequency") == "per-instance"}


FINAL_STEPS = {"scripts", "runcmd"}


def check_per_instance_not_rerun(first, again):
    """After a reboot: what did its job on the first boot is done-before, and no
    per-instance step does anything again (a step that found nothing to do on
    the first boot may look again and skip again)."""
    did = {k for k, v in per_instance_results(first).items() if v in ("changed", "ok")}
    now = per_instance_results(again)
    assert did, f"no per-instance step ran on the first boot: {per_instance_results(first)}"
    # the final stage's steps are simply absent: with nothing left to run, its
    # unit does not start on a reboot
    not_done_before = {k: now.get(k) for k in did if now.get(k) != "done-before"
                       and not (k in FINAL_STEPS and k not in now)}
    assert not not_done_before, f"per-instance steps not done-before on a reboot: {now}"
    ran = {k: v for k, v in now.items() if v not in ("done-before", "skipped")}
    assert not ran, f"per-instance steps ran again on a reboot: {ran}"


# -- DNS where ifupdown's dhclient owns /etc/resolv.conf ---------------------------
QEMU_DHCP_DNS = "10.0.2.3"
# ifup's own pid and lease files for eth0: `dhclient -r` with them stops the
# dhclient ifup started, instead of starting a second one beside it
IFUP_DHCLIENT = "-pf /run/dhclient.eth0.pid -lf /var/lib/dhcp/dhclient.eth0.leases"


def check_resolv_conf(guest, nameservers, search=None, options=(), when=""):
    """/etc/resolv.conf names exactly ``nameservers`` (never QEMU's DHCP
    server), and ``search``/``options`` when given."""
    text = guest.ssh("cat /etc/resolv.conf").stdout
    found = re.findall(r"^nameserver\s+(\S+)", text, re.M)
    assert found == list(nameservers), f"{when}: /etc/resolv.conf is\n{text}"
    if search:
        assert re.search(rf"^search\s+{re.escape(search)}$", text, re.M), f"{when}:\n{text}"
    for option in options:
        assert re.search(rf"^options\s+.*\b{re.escape(option)}\b", text, re.M), \
            f"{when}:\n{text}"
    return text


def check_resolv_conf_step_lasts(st):
    """resolv_conf said ``changed`` and named the dhclient hook that keeps it."""
    steps = [s for s in all_steps(st) if s["name"] == "resolv_conf"]
    assert steps and steps[0]["result"] == "changed", steps
    assert any("dhclient" in c for s in steps for c in s.get("changes", [])), steps


def check_dhclient_owns_the_network(guest):
    """The image is networked as the DNS checks need: ifup's dhclient holds
    eth0's lease and systemd-networkd is not running."""
    assert guest.ssh("pgrep -x dhclient", check=False).returncode == 0, \
        "no dhclient running: the image is not on ifupdown"
    assert guest.ssh("systemctl is-active systemd-networkd.service",
                     check=False).stdout.strip() != "active"


def renew_dhcp_lease(guest, timeout=120):
    """``dhclient -r; dhclient`` on eth0 with ifup's files, as an operator
    would: the lease is released (dhclient-script RELEASE takes the address
    away, and this SSH connection with it) and taken anew (dhclient-script
    BOUND, which rewrites /etc/resolv.conf unless told not to).  Waits until
    the journal shows both, and SSH works again."""
    cursor = guest.ssh("sudo -n journalctl -n 0 --show-cursor -o cat").stdout
    cursor = cursor.strip().rsplit("cursor: ", 1)[-1]
    guest.ssh(f"sudo -n setsid sh -c 'dhclient -r {IFUP_DHCLIENT} eth0; sleep 1; "
              f"dhclient {IFUP_DHCLIENT} eth0' >/dev/null 2>&1 </dev/null &")
    deadline = time.monotonic() + timeout
    log = ""
    while time.monotonic() < deadline:
        time.sleep(3)
        try:
            res = guest.ssh(f"sudo -n journalctl -o cat -t dhclient --after-cursor='{cursor}'",
                            check=False, timeout=30)
        except subprocess.TimeoutExpired:
            continue  # not reachable while the address is away
        if res.returncode == 0:
            log = res.stdout
            if "DHCPRELEASE" in log and re.search(r"^bound to ", log, re.M):
                return log
    raise AssertionError(f"no release and new lease by dhclient within {timeout} s; "
                         f"its journal since:\n{log}")
