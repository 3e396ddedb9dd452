"""Fixtures for the QEMU boots: the .deb, the images, throwaway keys.

Everything is built once per session; the debootstrapped base tree is cached
across runs by tests/e2e/build-image.
"""

import os
import shutil

import pytest

import harness

TOOLS = {
    "qemu-system-x86_64": "qemu-system-x86", "qemu-img": "qemu-utils",
    "debootstrap": "debootstrap", "genisoimage": "genisoimage", "mkfs.ext4": "e2fsprogs",
    "sfdisk": "fdisk", "lvm": "lvm2", "ssh": "openssh-client", "ssh-keygen": "openssh-client",
}


def pytest_collection_modifyitems(config, items):
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="e2e boots need root (network namespaces, chroot, "
                                       "loop devices): run as root")
        for item in items:
            if "/e2e/" in str(item.fspath):
                item.add_marker(skip)


@pytest.fixture(scope="session")
def e2e_dir(tmp_path_factory):
    missing = sorted({pkg for tool, pkg in TOOLS.items() if not shutil.which(tool)})
    if missing:
        pytest.fail("missing tools for the e2e boots; install: apt-get install "
                    + " ".join(missing) + " (tests/run does this from tests/apt-packages)")
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def keys(e2e_dir):
    """Throwaway key pairs: the user's key pair, a second user's, and a root
    key baked into the image only to collect the journal when a boot fails."""
    d = e2e_dir / "keys"
    d.mkdir(exist_ok=True)
    return {name: harness.make_keypair(d, name) for name in ("user", "extra", "debug")}


@pytest.fixture(scope="session")
def deb():
    path = harness.build_deb()
    print(f"[e2e] package: {path}")
    return path


def _image(e2e_dir, deb, keys, layout):
    out = e2e_dir / f"image-{layout}"
    image = harness.build_image(out, deb, layout, root_key=keys["debug"] + ".pub")
    yield image
    shutil.rmtree(out, ignore_errors=True)  # 1.5 GiB each; the base tree stays cached


@pytest.fixture(scope="session")
def plain_image(e2e_dir, deb, keys):
    yield from _image(e2e_dir, deb, keys, "plain")


@pytest.fixture(scope="session")
def lvm_image(e2e_dir, deb, keys):
    yield from _image(e2e_dir, deb, keys, "lvm")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed check on a guest shows where its console log is, and its tail."""
    outcome = yield
    rep = outcome.get_result()
    if rep.when != "call" or not rep.failed:
        return
    for value in getattr(item, "funcargs", {}).values():
        if isinstance(value, harness.Guest) and value.ns is not None:
            if "console log of" not in str(rep.longrepr):
                value.collect_journal()
                rep.sections.append((f"console of {value.name}", value.console_tail()))


def pytest_terminal_summary(terminalreporter):
    if harness.TIMINGS:
        terminalreporter.section("e2e boot timings (TCG)")
        for line in harness.TIMINGS:
            terminalreporter.write_line(line)
        try:
            os.makedirs(harness.LOG_ROOT, exist_ok=True)
            with open(os.path.join(harness.LOG_ROOT, "timings.txt"), "w") as f:
                f.write("\n".join(harness.TIMINGS) + "\n")
        except OSError:
            pass
