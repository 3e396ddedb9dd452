"""Boot real Debian images with the agent's .deb in QEMU, and talk to them.

Reusable outside pytest (the benchmark uses it)::

    from harness import boot, build_deb, build_image, make_keypair
    img = build_image(workdir / "img", build_deb())  # layout="lvm" for an LVM root
    # other variants: build_image(..., suite="trixie", init="sysvinit", fs="xfs", bus="nvme")
    key = make_keypair(workdir)                      # its .pub goes into the metadata
    with boot(img, workdir / "vm", "name", key=key, metadata_tree=tree) as g:
        print(g.time_to_ssh, g.unit_times(), g.ssh("hostname").stdout)
        g.reboot()

An image without the agent (deb "-") has no default user: bake a root key in
with ``build_image(..., root_key=pub)`` and ``boot(..., key=priv, user="root")``.

Every guest runs inside its own network namespace: 169.254.169.254 lives on
that namespace's loopback (the project's metadata server listens there), QEMU's
user networking makes the guest's requests to that address reach it, and SSH
reaches the guest through a host forward on 127.0.0.1 inside the namespace.
Nothing leaves the namespace.  QEMU runs with TCG: nested KVM hangs here.
"""

import contextlib
import gzip
import os
import re
import shutil
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
REPO = os.path.dirname(TESTS)
sys.path.insert(0, TESTS)

from support.netns import Netns  # noqa: E402

BUILD_IMAGE = os.path.join(HERE, "build-image")
BUILD_DEB = os.path.join(REPO, "packaging", "build-deb")
LOG_ROOT = os.environ.get("GUESTAGENT_E2E_LOGS", "/var/tmp/guestagent-e2e-logs")
SSH_PORT = 2222
FIRST_MAC = "52:54:00:12:34:56"  # QEMU's own default for the first NIC, made explicit
USER = "debian"
FP_BEGIN = "-----BEGIN SSH HOST KEY FINGERPRINTS-----"
FP_END = "-----END SSH HOST KEY FINGERPRINTS-----"
# One line per boot measured in this process, for the end-of-run summary.
TIMINGS = []


# What build-image makes when not told otherwise (its first choice of each).
DEFAULT_VARIANT = {"suite": "bookworm", "init": "systemd", "fs": "ext4", "bus": "virtio",
                   "net": "networkd"}
# Python in each suite (what the agent runs on there).
SUITE_PYTHON = {"bullseye": "3.9", "bookworm": "3.11", "trixie": "3.13"}


class Image:
    """A bootable raw disk plus the kernel, initrd and command line to boot it.

    ``suite``, ``init``, ``fs``, ``bus``, ``net``, ``layout``: the variant it
    was built as (``net``: what runs DHCP, networkd or ifupdown's dhclient);
    ``root_disk`` and ``root_device``: the guest's names for the root disk and
    the device holding / (``/dev/nvme0n1p1``, ``/dev/mapper/vg0-root``)."""

    def __init__(self, out):
        self.dir = str(out)
        self.disk = os.path.join(self.dir, "disk.raw")
        self.kernel = os.path.join(self.dir, "vmlinuz")
        self.initrd = os.path.join(self.dir, "initrd.img")
        with open(os.path.join(self.dir, "cmdline")) as f:
            self.cmdline = f.read().strip()
        self.size = os.path.getsize(self.disk)
        variant = dict(DEFAULT_VARIANT, layout="plain", disk="/dev/vda", root="/dev/vda1")
        try:
            with open(os.path.join(self.dir, "variant")) as f:
                variant.update(ln.strip().split("=", 1) for ln in f if "=" in ln)
        except OSError:
            pass  # an image from before variants: bookworm, systemd, ext4, virtio
        self.suite = variant["suite"]
        self.init = variant["init"]
        self.fs = variant["fs"]
        self.bus = variant["bus"]
        # SysV images always run ifupdown's dhclient
        self.net = variant["net"] if self.init == "systemd" else "ifupdown"
        self.layout = variant["layout"]
        self.root_disk = variant["disk"]
        self.root_device = variant["root"]

    @property
    def systemd(self):
        return self.init == "systemd"

    def describe(self):
        return (f"Debian {self.suite} (Python {SUITE_PYTHON.get(self.suite, '?')}), {self.init}, "
                f"{self.layout} {self.fs} root on {self.bus}, {self.net} network")


def build_deb():
    """Build the package with packaging/build-deb; returns the .deb's path."""
    if not os.path.exists(BUILD_DEB):
        raise RuntimeError(f"{BUILD_DEB} does not exist: cannot build the .deb to boot")
    res = subprocess.run([BUILD_DEB], cwd=REPO, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"packaging/build-deb failed ({res.returncode}):\n"
                           f"{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    lines = [ln.strip() for ln in res.stdout.splitlines() if ln.strip()]
    path = lines[-1] if lines else ""
    if not path.endswith(".deb") or not os.path.exists(os.path.join(REPO, path)):
        raise RuntimeError(f"packaging/build-deb did not print a .deb path last: {path!r}")
    return os.path.join(REPO, path)


def variant_args(suite=None, init=None, fs=None, bus=None, net=None):
    """build-image's options for a variant (None: its default)."""
    args = []
    for name, value in (("suite", suite), ("init", init), ("fs", fs), ("bus", bus),
                        ("net", net)):
        if value is not None:
            args += [f"--{name}", value]
    return args


def base_variant(suite=None, init=None, net=None, **_disk_options):
    """The name of the base tree a variant's image is made from, as
    ``build-image bases`` takes it: SUITE-INIT, or SUITE-systemd+ifupdown for
    ``net="ifupdown"`` under systemd (ifupdown and isc-dhcp-client added).
    The disk's options (fs, bus, layout) share their variant's tree."""
    suite, init = suite or DEFAULT_VARIANT["suite"], init or DEFAULT_VARIANT["init"]
    if init == "systemd" and net == "ifupdown":
        return f"{suite}-{init}+ifupdown"
    return f"{suite}-{init}"


def build_base(suite=None, init=None):
    """The cached debootstrapped tree (built on first use; several minutes)."""
    res = subprocess.run([BUILD_IMAGE] + variant_args(suite, init) + ["base"],
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"build-image base failed:\n{res.stderr[-4000:]}")
    return res.stdout.strip().splitlines()[-1]


def build_bases(variants):
    """Build several base trees ("SUITE-INIT[+NET]", see base_variant), two at
    a time; waits for all."""
    res = subprocess.run([BUILD_IMAGE, "bases"] + list(variants), capture_output=True,
                         text=True)
    if res.returncode != 0:
        raise RuntimeError(f"build-image bases {' '.join(variants)} failed:\n"
                           f"{res.stderr[-4000:]}")


def build_image(out, deb="-", layout="plain", root_key=None, *, suite=None, init=None,
                fs=None, bus=None, net=None):
    """A disk in ``out`` from the cached base tree with ``deb`` installed.

    ``suite`` (bookworm, bullseye, trixie), ``init`` (systemd, sysvinit),
    ``fs`` (ext4, xfs, btrfs), ``bus`` (virtio, nvme, scsi), ``net``
    (networkd, ifupdown): the variant; None is build-image's default (the
    first of each)."""
    env = dict(os.environ)
    if root_key:
        env["GUESTAGENT_E2E_ROOT_KEY"] = str(root_key)
    argv = [BUILD_IMAGE] + variant_args(suite, init, fs, bus, net) + [
        "disk", str(deb), str(out), layout]
    res = subprocess.run(argv, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"build-image {' '.join(argv[1:])} failed:\n{res.stderr[-4000:]}")
    return Image(out)


def build_next_deb(workdir):
    """The .deb of the release after this tree's (its version bumped in a
    clean copy, then packaging/build-deb there): what an upgrade installs.
    Returns (path, version)."""
    from support.package_tree import bump_version, clean_copy
    tree = clean_copy(os.path.join(str(workdir), "next-release"))
    version = bump_version(tree)
    res = subprocess.run([os.path.join(tree, "packaging", "build-deb")], cwd=tree,
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"build-deb of {version} failed ({res.returncode}):\n"
                           f"{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    path = res.stdout.strip().splitlines()[-1]
    if not path.endswith(f"_{version}_all.deb"):
        raise RuntimeError(f"build-deb of {version} printed {path!r} last")
    return path, version


def make_keypair(directory, name="id_ed25519"):
    """A throwaway ed25519 key pair; returns the private key's path."""
    path = os.path.join(str(directory), name)
    if not os.path.exists(path):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                        f"guestagent-e2e-{name}", "-f", path], check=True)
    return path


def public_key(private_path):
    with open(private_path + ".pub") as f:
        return f.read().strip()


def config_drive_iso(tree, iso):
    """An ISO 9660 config drive (label config-2) of a config-drive-shaped tree."""
    subprocess.run(["genisoimage", "-quiet", "-o", str(iso), "-V", "config-2", "-r", "-J",
                    str(tree)], check=True)
    return str(iso)


def gzip_bytes(data):
    return gzip.compress(data, mtime=0)


@contextlib.contextmanager
def boot(image, workdir, name="guest", user=USER, **kw):
    """A started Guest that already accepted an SSH login as ``user``."""
    with Guest(image, workdir, name, **kw) as g:
        g.wait_ssh(user=user)
        yield g


class GuestError(AssertionError):
    pass


class Guest:
    """One QEMU guest in its own namespace; a context manager.

    ``metadata_tree``: serve it as the metadata service at 169.254.169.254.
    ``config_drive``: attach this ISO read-only: a virtio disk, or a SCSI
    CD-ROM when the image's root disk is on SCSI.
    ``disk_size``: the overlay's virtual size (the flavor's root disk).
    ``extra_disks``: raw images attached after the root disk as further virtio
    disks (/dev/vdb, ...; written to by the guest).
    ``on_netns``: called with the guest's Netns before QEMU starts, to start
    servers the guest reaches at 10.0.2.2 (the namespace's 127.0.0.1).
    ``metadata_args``: more arguments for the metadata server (``--hetzner
    DIR``, ``--flap-for 20``).  ``smbios``: the SMBIOS type 1 fields (default: Nova's, with the
    instance UUID); ``{uuid}`` in it is the instance UUID.
    """

    def __init__(self, image, workdir, name="guest", *, key=None, root_key=None,
                 metadata_tree=None, config_drive=None, disk_size="3G",
                 instance_uuid=None, memory=1024, smp=2, cpu="max", extra_append="",
                 ssh_to=None, extra_nics=(), extra_disks=(), on_netns=None,
                 metadata_args=(), smbios=None, mac=FIRST_MAC, disk_cache="unsafe"):
        self.image = image
        self.workdir = str(workdir)
        self.name = name
        self.key = key
        self.root_key = root_key
        self.metadata_tree = metadata_tree
        self.config_drive = config_drive
        self.disk_size = disk_size
        self.uuid = instance_uuid or str(uuid.uuid4())
        self.memory = memory
        self.smp = smp
        self.cpu = cpu
        self.extra_append = extra_append
        self.extra_disks = list(extra_disks)
        self.on_netns = on_netns
        self.metadata_args = [str(a) for a in metadata_args]
        self.smbios = smbios or ("manufacturer=OpenStack Foundation,product=OpenStack Nova,"
                                 "uuid={uuid}")
        # QEMU's cache mode for the root disk: "unsafe" (fast; the guest's
        # flushes are ignored) unless the test pulls the plug: then
        # "writeback", so what the guest flushed survives QEMU's SIGKILL and
        # what it did not flush may be lost, as on a disk with a write cache
        self.disk_cache = disk_cache
        # ssh_to: the guest address SSH is forwarded to (default: whatever
        # QEMU's DHCP handed out); extra_nics: (mac, net CIDR) of more NICs,
        # each on its own isolated user network with nothing to reach
        self.ssh_to = ssh_to or ""
        self.mac = mac  # the first NIC's, which SSH is forwarded through
        self.extra_nics = list(extra_nics)
        os.makedirs(self.workdir, exist_ok=True)
        self.console = os.path.join(self.workdir, "console.log")
        self.overlay = os.path.join(self.workdir, "disk.qcow2")
        self.metadata_log = os.path.join(self.workdir, "metadata-requests.log")
        self.ns = None
        self.qemu = None
        self.started = None
        self.time_to_ssh = None
        self.boots = []  # seconds to SSH, per boot
        self.earlier_consoles = []  # console logs of boots ended by a power cut

    # -- lifecycle -----------------------------------------------------------
    def start(self, keep_disk=False):
        """Start QEMU; ``keep_disk``: on the disk an earlier start left (a
        powered-off guest booted again, see ``boot_as``)."""
        for p in (self.console, self.metadata_log) + (() if keep_disk else (self.overlay,)):
            if os.path.exists(p):
                os.unlink(p)
        if not keep_disk:
            # A previous run's logs must not pass for this one's.
            shutil.rmtree(os.path.join(LOG_ROOT, self.name), ignore_errors=True)
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", self.image.disk,
                            "-F", "raw", self.overlay, self.disk_size], check=True)
        self.ns = Netns()
        if self.metadata_tree is not None:
            self.ns.start_server(self.metadata_tree, "--log", self.metadata_log,
                                 *self.metadata_args)
        if self.on_netns is not None:
            self.on_netns(self.ns)
        self._launch()
        return self

    def _launch(self):
        """Start QEMU on the overlay as it is (a first boot, or the boot after
        a power cut)."""
        append = f"{self.image.cmdline} {self.extra_append}".strip()
        argv = [
            "qemu-system-x86_64", "-name", self.name, "-nodefaults", "-no-user-config",
            "-accel", "tcg", "-cpu", self.cpu, "-smp", str(self.smp), "-m", str(self.memory),
            "-display", "none", "-vga", "none", "-monitor", "none",
            "-serial", f"file:{self.console}",
            "-kernel", self.image.kernel, "-initrd", self.image.initrd, "-append", append,
        ] + self._disk_args() + [
            "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{SSH_PORT}-{self.ssh_to}:22",
            "-device", f"virtio-net-pci,netdev=n0,mac={self.mac}",
            "-device", "virtio-rng-pci",
            "-smbios", "type=1," + self.smbios.format(uuid=self.uuid),
        ]
        for i, (mac, net) in enumerate(self.extra_nics, 1):
            argv += ["-netdev", f"user,id=n{i},net={net},restrict=on",
                     "-device", f"virtio-net-pci,netdev=n{i},mac={mac}"]
        self.qemu_log = open(os.path.join(self.workdir, "qemu.log"),
                             "a" if self.earlier_consoles else "w")
        self.started = time.monotonic()
        self.qemu = self.ns.popen(argv, stdout=self.qemu_log, stderr=subprocess.STDOUT)

    def _disk_args(self):
        """The root disk on the image's bus, and the config drive beside it."""
        root = f"file={self.overlay},format=qcow2,cache={self.disk_cache},discard=unmap"
        cd = f"file={self.config_drive},format=raw,readonly=on" if self.config_drive else None
        bus = self.image.bus
        if bus == "virtio":
            args = ["-drive", f"{root},if=virtio"]
        elif bus == "nvme":
            args = ["-drive", f"{root},if=none,id=root",
                    "-device", "nvme,drive=root,serial=guestagent-e2e"]
        elif bus == "scsi":
            args = ["-device", "virtio-scsi-pci,id=scsi0",
                    "-drive", f"{root},if=none,id=root",
                    "-device", "scsi-hd,drive=root,bus=scsi0.0"]
            if cd:
                # As libvirt gives Nova's config drive on a SCSI guest: a CD-ROM.
                return args + ["-drive", f"{cd},if=none,id=cd,media=cdrom",
                               "-device", "scsi-cd,drive=cd,bus=scsi0.0"]
        else:
            raise ValueError(f"unknown disk bus {bus!r}")
        for disk in self.extra_disks:  # /dev/vdb, ... (before the config drive)
            args += ["-drive", f"file={disk},if=virtio,format=raw,cache=unsafe"]
        if cd:
            args += ["-drive", f"{cd},if=virtio"]
        return args

    # -- power loss ----------------------------------------------------------
    def power_cut_when(self, pattern, delay=0.0, timeout=None):
        """Pull the plug: SIGKILL QEMU ``delay`` seconds after this boot's
        console first shows a line matching ``pattern`` (a regex).  The guest
        loses its page cache and whatever its disk did not flush (see
        ``disk_cache``).  Returns the matched line."""
        timeout = timeout or float(os.environ.get("GUESTAGENT_E2E_BOOT_TIMEOUT", "420"))
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen, partial, offset = None, "", 0
        while seen is None:
            if time.monotonic() > deadline:
                self.fail(f"the console never showed {pattern!r} within {timeout:.0f} s")
            if self.qemu.poll() is not None:
                self.fail(f"QEMU exited ({self.qemu.returncode}) before the console "
                          f"showed {pattern!r}")
            try:
                with open(self.console, "rb") as f:
                    f.seek(offset)
                    chunk = f.read()
            except OSError:
                chunk = b""
            offset += len(chunk)
            lines = (partial + chunk.decode("utf-8", "replace")).replace("\r", "").split("\n")
            partial = lines.pop()
            seen = next((ln for ln in lines if rx.search(ln)), None)
            if seen is None and rx.search(partial):
                seen = partial
            if seen is None:
                time.sleep(0.01)
        if delay:
            time.sleep(delay)
        self.qemu.kill()  # SIGKILL: `ip netns exec` execs QEMU, so this is QEMU itself
        self.qemu.wait()
        print(f"[e2e] {self.name}: power cut {delay:.2f} s after {seen.strip()!r}", flush=True)
        return seen

    def power_on(self):
        """Boot the same disk again (same instance, config drive, metadata
        server) after `power_cut_when`; the cut boot's console is kept as
        console-cutN.log."""
        if self.qemu is not None and self.qemu.poll() is None:
            raise RuntimeError("power_on: the guest is still running")
        kept = os.path.join(self.workdir, f"console-cut{len(self.earlier_consoles) + 1}.log")
        os.replace(self.console, kept)
        self.earlier_consoles.append(kept)
        self.qemu_log.close()
        self._launch()
        return self

    def close(self):
        if self.qemu is not None and self.qemu.poll() is None:
            self.qemu.kill()
            self.qemu.wait()
        if self.ns is not None:
            self.ns.close()
            self.ns = None
        self.keep_logs()
        if os.path.exists(self.overlay):
            os.unlink(self.overlay)  # what the guest wrote: hundreds of MiB, logs are kept

    def __enter__(self):
        # a guest already started (booted again after a power cut) is not
        # started afresh: that would orphan the running QEMU and its namespace
        return self if self.qemu is not None else self.start()

    def wait_poweroff(self, timeout=300):
        """Wait for the guest to power itself off (QEMU exits); returns the seconds."""
        t0 = time.monotonic()
        try:
            self.qemu.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.fail(f"the guest did not power off within {timeout} s")
        return time.monotonic() - t0

    def power_off(self, timeout=300):
        """Power the guest off from inside, as a user stops an instance."""
        command = "sudo -n systemctl poweroff" if self.image.systemd else "sudo -n /sbin/poweroff"
        try:
            self.ssh(command, check=False, timeout=30)
        except subprocess.TimeoutExpired:
            pass  # the connection may hang while the guest goes down
        return self.wait_poweroff(timeout)

    def boot_as(self, instance_uuid=None, config_drive=None, mac=None, ssh_to=None, key=None):
        """Boot the powered-off guest's disk again as another instance (what
        a cloud does with a snapshot or an image made from this disk):
        another SMBIOS UUID, config drive, first NIC MAC, SSH target and key.
        Waits for an SSH login and for the boot to settle.  The console so
        far is kept as console-bootN.log, N the boots it holds (a reboot
        inside one QEMU run writes on in the same file)."""
        if self.qemu is not None and self.qemu.poll() is None:
            raise RuntimeError("boot_as: the guest is still running; power it off first")
        self.qemu_log.close()
        if self.ns is not None:
            self.ns.close()
            self.ns = None
        n = len(self.boots)
        for name in ("console.log", "qemu.log", "metadata-requests.log"):
            src = os.path.join(self.workdir, name)
            if os.path.exists(src):
                shutil.copy(src, os.path.join(self.workdir, f"{name[:-4]}-boot{n}.log"))
        self.uuid = instance_uuid or self.uuid
        self.config_drive = config_drive or self.config_drive
        self.mac = mac or self.mac
        self.ssh_to = self.ssh_to if ssh_to is None else ssh_to
        self.key = key or self.key
        self.start(keep_disk=True)
        self.wait_ssh()
        self.settle()
        return self

    def copy_in(self, local, remote, user=USER):
        """Copy a host file into the guest (as ``user``, over SSH)."""
        with open(local, "rb") as f:
            res = subprocess.run(self._ssh_argv(user, self.key) + ["--", f"cat > {remote}"],
                                 stdin=f, capture_output=True, timeout=300)
        if res.returncode != 0:
            self.fail(f"copying {local} to the guest's {remote} failed: {res.stderr[-2000:]}")

    def __exit__(self, *exc):
        self.close()

    def keep_logs(self):
        """Copy the console log where a developer finds it; returns its path."""
        dest = os.path.join(LOG_ROOT, self.name)
        os.makedirs(dest, exist_ok=True)
        kept = ("console.log", "metadata-requests.log", "qemu.log", "journal.txt")
        for name in os.listdir(self.workdir):
            if name in kept or re.fullmatch(
                    r"(console|qemu|metadata-requests)-(boot|cut)\d+\.log", name):
                shutil.copy(os.path.join(self.workdir, name), os.path.join(dest, name))
        return os.path.join(dest, "console.log")

    # -- reading the guest -----------------------------------------------------
    def console_text(self, every_boot=False):
        """This boot's console; ``every_boot``: also those of the boots a
        power cut ended, oldest first."""
        texts = []
        for path in (self.earlier_consoles if every_boot else []) + [self.console]:
            try:
                with open(path, "rb") as f:
                    texts.append(f.read().decode("utf-8", "replace"))
            except OSError:
                pass
        return "".join(texts)

    def console_tail(self, n=60):
        path = self.keep_logs()
        lines = self.console_text().replace("\r", "").splitlines()
        return (f"console log of {self.name}: {path} (last {n} lines)\n"
                + "\n".join(lines[-n:]))

    def fail(self, msg):
        raise GuestError(f"{msg}\n{self.console_tail()}")

    def metadata_requests(self):
        try:
            with open(self.metadata_log) as f:
                return f.read().splitlines()
        except OSError:
            return []

    # -- ssh -----------------------------------------------------------------
    def _ssh_argv(self, user, key, connect_timeout=10):
        return self.ns.prefix() + [
            "ssh", "-p", str(SSH_PORT), "-i", key,
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-o", f"ConnectTimeout={connect_timeout}",
            "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=6",
            f"{user}@127.0.0.1"]

    def ssh(self, cmd, user=USER, key=None, check=True, timeout=180, input=None):
        """Run ``cmd`` (a shell string) in the guest; returns CompletedProcess."""
        key = key or self.key
        res = subprocess.run(self._ssh_argv(user, key) + ["--", cmd], capture_output=True,
                             text=True, timeout=timeout, input=input)
        if check and res.returncode != 0:
            self.fail(f"ssh {user}@guest {cmd!r} exited {res.returncode}:\n"
                      f"stdout: {res.stdout[-2000:]}\nstderr: {res.stderr[-2000:]}")
        return res

    def wait_ssh(self, user=USER, key=None, timeout=None, boot=True):
        """Wait for an SSH login to work; returns the time it took and, for a
        boot (not a network blip the test made), records it."""
        timeout = timeout or float(os.environ.get("GUESTAGENT_E2E_BOOT_TIMEOUT", "420"))
        key = key or self.key
        t0 = self.started
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.qemu.poll() is not None:
                self.fail(f"QEMU exited ({self.qemu.returncode}) before SSH came up")
            try:
                res = subprocess.run(self._ssh_argv(user, key, 5) + ["--", "true"],
                                     capture_output=True, text=True, timeout=30)
                if res.returncode == 0 and not boot:
                    return time.monotonic() - t0
                if res.returncode == 0:
                    self.time_to_ssh = time.monotonic() - t0
                    self.boots.append(self.time_to_ssh)
                    print(f"[e2e] {self.name}: boot {len(self.boots)} to SSH login as {user} "
                          f"in {self.time_to_ssh:.1f} s", flush=True)
                    return self.time_to_ssh
                last = res.stderr.strip()
            except subprocess.TimeoutExpired:
                last = "ssh timed out"
            time.sleep(2)
        self.collect_journal()
        self.fail(f"no SSH login as {user} within {timeout:.0f} s (last ssh error: {last})")

    def collect_journal(self):
        """Diagnostics: the agent's journal over a root login, when one was baked in."""
        if not self.root_key or self.ns is None:
            return
        try:
            res = subprocess.run(
                self._ssh_argv("root", self.root_key, 5)
                + ["--", "journalctl -b --no-pager -o short-monotonic | tail -400; "
                         "systemctl --failed --no-pager"],
                capture_output=True, text=True, timeout=60)
            with open(os.path.join(self.workdir, "journal.txt"), "w") as f:
                f.write(res.stdout + res.stderr)
        except (subprocess.TimeoutExpired, OSError):
            pass

    def settle(self, timeout=300):
        """Wait until the boot is over, as a user would see it; returns the
        state.  systemd: ``systemctl is-system-running --wait`` ("running" or
        "degraded"), and no agent stage still growing the root after its
        unit said READY=1.  SysV: runlevel 2 reached, /etc/init.d/rc finished
        and no agent run left in the background ("running")."""
        if self.image.systemd:
            res = self.ssh("sudo -n systemctl is-system-running --wait", check=False,
                           timeout=timeout)
            # [o]: the pattern must not match this very shell's command line
            self.ssh(f"for i in $(seq {timeout}); do pgrep -f 'guestagent --onc[e]' >/dev/null "
                     "|| exit 0; sleep 1; done", check=False, timeout=timeout + 30)
            return res.stdout.strip()
        # [c] and [e]: the patterns must not match this very shell's command
        # line; /sbin/runlevel: /sbin is not on a user's PATH on Debian
        script = (f"for i in $(seq {timeout // 2}); do "
                  "if /sbin/runlevel | grep -q ' 2$' && ! pgrep -f '/etc/init.d/r[c] ' >/dev/null "
                  "&& ! pgrep -f 'guestagent --onc[e]' >/dev/null; then echo running; exit 0; "
                  "fi; sleep 1; done; echo starting; /sbin/runlevel; ps -ef")
        return self.ssh(script, check=False, timeout=timeout).stdout.strip()

    def failed_services(self):
        """What failed in this boot, as lines: ``systemctl --failed`` under
        systemd; under SysV the init scripts' own failure reports on the
        console (LSB ``[FAIL]``/``failed!``, startpar's "returned failure")
        since the last kernel banner."""
        if self.image.systemd:
            # As root: without D-Bus in the image, only root reaches systemd.
            res = self.ssh("sudo -n systemctl --failed --no-legend --plain")
            return [ln for ln in res.stdout.splitlines() if ln.strip()]
        text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", self.console_text()).replace("\r", "\n")
        boot = text.rsplit("Linux version ", 1)[-1]
        return [ln.strip() for ln in boot.splitlines()
                if re.search(r"\[\s*FAIL\s*\]|failed!|returned failure", ln)]

    def boot_id(self):
        return self.ssh("cat /proc/sys/kernel/random/boot_id").stdout.strip()

    def reboot(self, timeout=None):
        """Reboot the guest (same instance, same disk) and wait for SSH again."""
        before = self.boot_id()
        command = "sudo -n systemctl reboot" if self.image.systemd else "sudo -n /sbin/reboot"
        try:
            self.ssh(command, check=False, timeout=30)
        except subprocess.TimeoutExpired:
            pass  # the connection may hang until the guest's network goes away
        self.started = time.monotonic()
        # Wait until the old sshd is gone, so wait_ssh sees the new boot.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                res = subprocess.run(self._ssh_argv(USER, self.key, 5)
                                     + ["--", "cat /proc/sys/kernel/random/boot_id"],
                                     capture_output=True, text=True, timeout=30)
            except subprocess.TimeoutExpired:
                break  # a login that hangs: the old guest is going down
            if res.returncode != 0 or res.stdout.strip() != before:
                break
            time.sleep(1)
        self.wait_ssh(timeout=timeout)
        if self.boot_id() == before:
            self.fail("the guest did not reboot")
        # sshd is up once the local stage says READY=1, which can be before
        # that stage has written its status: what follows checks the
        # settled boot, as after a first boot
        self.settle()

    # -- what the guest shows --------------------------------------------------
    def unit_times(self):
        """``systemd-analyze blame`` of this boot, as {unit: seconds} ({} under SysV)."""
        if not self.image.systemd:
            return {}
        out = self.ssh("sudo -n systemd-analyze blame --no-pager", check=False).stdout
        times = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) < 2:
                continue
            secs, unit = 0.0, parts[-1]
            for tok in parts[:-1]:
                secs += _seconds(tok)
            times[unit] = round(secs, 3)
        return times

    def report_boot(self):
        """Print time to SSH and the agent's unit times (for the test log)."""
        agent = {u: t for u, t in self.unit_times().items() if u.startswith("guestagent")}
        units = ", ".join(f"{u} {t:.1f} s" for u, t in sorted(agent.items()))
        if not self.image.systemd:
            units = "(SysV init: no unit times)"
        line = (f"{self.name} boot {len(self.boots)}: time to SSH {self.time_to_ssh:.1f} s; "
                f"agent units: {units or 'none ran'}")
        TIMINGS.append(line)
        print(f"[e2e] {line}", flush=True)

    def keyscan(self, types=("ed25519", "ecdsa", "rsa")):
        """The host public keys sshd offers a client, as {type: base64 blob}.

        One type per scan, retried: under TCG a scan of all types at once
        sometimes loses one to its timeout."""
        keys = {}
        for t in types:
            for _ in range(4):
                res = subprocess.run(self.ns.prefix() + ["ssh-keyscan", "-p", str(SSH_PORT),
                                                         "-T", "30", "-t", t, "127.0.0.1"],
                                     capture_output=True, text=True, timeout=120)
                found = [ln.split() for ln in res.stdout.splitlines()
                         if ln and not ln.startswith("#")]
                found = [f for f in found if len(f) >= 3]
                if found:
                    keys.update({f[1]: f[2] for f in found})
                    break
                time.sleep(1)
        return keys

    def host_public_keys(self):
        """The guest's host public key files, as {type: base64 blob}."""
        out = self.ssh("cat /etc/ssh/ssh_host_*_key.pub").stdout
        return {p[0]: p[1] for p in (ln.split() for ln in out.splitlines()) if len(p) >= 2}

    def console_fingerprint_blocks(self, every_boot=False):
        """Every fingerprint block printed on the console, each a list of lines."""
        blocks, cur = [], None
        for line in self.console_text(every_boot).replace("\r", "").splitlines():
            if FP_BEGIN in line:
                cur = []
            elif FP_END in line and cur is not None:
                blocks.append(cur)
                cur = None
            elif cur is not None:
                cur.append(line)
        return blocks


def _seconds(tok):
    """'1min 2.5s', '850ms' pieces (systemd-analyze) to seconds."""
    for suffix, mult in (("min", 60.0), ("ms", 0.001), ("us", 0.000001), ("s", 1.0)):
        if tok.endswith(suffix):
            try:
                return float(tok[: -len(suffix)]) * mult
            except ValueError:
                return 0.0
    return 0.0


def fingerprint(keytype, blob):
    """SHA256 fingerprint of a public key, as ssh-keygen -l prints it."""
    res = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", "-"],
                         input=f"{keytype} {blob}\n", capture_output=True, text=True,
                         check=True)
    return res.stdout.split()[1]


@contextlib.contextmanager
def _root_partition(image, prefix):
    """(a loop device over a plain image's root partition, an empty scratch
    directory to mount it on); the caller mounts and unmounts, the loop device
    and the directory go on the way out."""
    import json
    import tempfile
    table = json.loads(subprocess.run(["sfdisk", "-J", image.disk], capture_output=True,
                                      text=True, check=True).stdout)["partitiontable"]
    sector = table.get("sectorsize", 512)
    part = table["partitions"][0]
    loop = subprocess.run(["losetup", "-f", "--show", "-o", str(part["start"] * sector),
                           "--sizelimit", str(part["size"] * sector), image.disk],
                          capture_output=True, text=True, check=True).stdout.strip()
    mnt = tempfile.mkdtemp(prefix=prefix)
    try:
        yield loop, mnt
    finally:
        subprocess.run(["losetup", "-d", loop], check=False)
        os.rmdir(mnt)


def fill_root(image, filler="/var/lib/image-filler"):
    """Fill a plain ext4 image's root filesystem to its last block, root's
    reserve too (``tune2fs -r 0``, then ``fallocate`` and writes for what
    its rounding leaves): an image that ships with its root at 100 %, so
    that even the agent (root) can write nothing until the root grows.
    Returns the bytes still available afterwards (0)."""
    if image.layout != "plain" or image.fs != "ext4":
        raise ValueError("fill_root: plain ext4 images only")
    with _root_partition(image, "fill-root-") as (loop, mnt):
        subprocess.run(["tune2fs", "-r", "0", loop], capture_output=True, check=True)
        subprocess.run(["mount", loop, mnt], check=True)
        try:
            st = os.statvfs(mnt)
            path = mnt + filler
            # fallocate's extent records need blocks of their own: leave it
            # 8 MiB, which the writes below take
            subprocess.run(["fallocate", "-l", str(st.f_bavail * st.f_frsize - (8 << 20)),
                            path], check=True)
            fd = os.open(path + "-tail", os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                for chunk in (1 << 16, 4096, 1024):
                    while True:
                        try:
                            if os.write(fd, b"\0" * chunk) < chunk:
                                break
                        except OSError:
                            break
            finally:
                os.close(fd)
            os.sync()
            st = os.statvfs(mnt)
            # (f_bfree would count ext4's own reserve, which no file gets)
            return st.f_bavail * st.f_frsize
        finally:
            subprocess.run(["umount", mnt], check=True)


def seal_host_keys(image):
    """Seal a plain image's host keys as an image builder does: this tree's
    ``guestagent clean --host-keys --root`` on its root filesystem (loop
    device at the partition's offset).  Returns what clean printed."""
    if image.layout != "plain":
        raise ValueError("seal_host_keys: plain images only")
    with _root_partition(image, "seal-keys-") as (loop, mnt):
        subprocess.run(["mount", loop, mnt], check=True)
        try:
            res = subprocess.run([sys.executable, "-m", "guestagent", "clean", "--host-keys",
                                  "--root", mnt], capture_output=True, text=True, check=True,
                                 env=dict(os.environ, PYTHONPATH=REPO))
            left = [n for n in os.listdir(os.path.join(mnt, "etc/ssh"))
                    if n.startswith("ssh_host_")]
            if left:
                raise RuntimeError(f"host keys left after clean: {left}")
            return res.stdout
        finally:
            subprocess.run(["umount", mnt], check=True)
