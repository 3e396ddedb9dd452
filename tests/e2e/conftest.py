"""Fixtures for the QEMU boots: the .deb, the images, throwaway keys.

Everything is built once per session; the debootstrapped base tree is cached
across runs by tests/e2e/build-image.
"""

import os
import shutil
import subprocess

import pytest
import scenarios

import harness

TOOLS = {
    "qemu-system-x86_64": "qemu-system-x86", "qemu-img": "qemu-utils",
    "debootstrap": "debootstrap", "genisoimage": "genisoimage", "mkfs.ext4": "e2fsprogs",
    "sfdisk": "fdisk", "lvm": "lvm2", "ssh": "openssh-client", "ssh-keygen": "openssh-client",
    "cloud-localds": "cloud-image-utils",
}


def pytest_addoption(parser):
    parser.addoption("--matrix", action="store_true",
                     help="boot every scenario (test_matrix.py, test_dns_lasts.py), "
                          "not only those CI boots")
    parser.addoption("--power-loss", action="store_true",
                     help="run only the power-cut sweep (test_power_loss.py): --cuts cuts "
                          "at console lines plus a seeded random delay, two boots each")
    parser.addoption("--cuts", type=int, default=8, help="cuts the sweep makes (default 8)")
    parser.addoption("--seed", type=int, default=1, help="the sweep's seed (default 1)")


@pytest.hookimpl(trylast=True)  # after -k/-m deselection: only what will run
def pytest_collection_modifyitems(config, items):
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="e2e boots need root (network namespaces, chroot, "
                                       "loop devices): run as root")
        for item in items:
            if "/e2e/" in str(item.fspath):
                item.add_marker(skip)
        return
    if config.getoption("--power-loss", False):
        sweep = [i for i in items if i.originalname == "test_sweep"]
        config.hook.pytest_deselected(items=[i for i in items if i not in sweep])
        items[:] = sweep
    # Scenarios CI does not boot (a module's MATRIX "ci", see scenarios.py),
    # unless --matrix: deselected, and named at the end of the run.
    keep, dropped = [], set()
    for item in items:
        found = scenarios.scenario(item)
        if found and not config.getoption("--matrix", False) and not found[1]["ci"]:
            dropped.add(found[0])
        else:
            keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep
        NOT_BOOTED.extend(sorted(dropped))
    # Every base tree the selected boots need, built two at a time in the
    # background from now on (debootstrap is mostly download): the image
    # fixtures wait for theirs through build-image's per-variant lock.  Left
    # running if the session ends first: the trees are cached for the next.
    bases = set()
    for item in items:
        if "/e2e/" in str(item.fspath):
            bases |= scenarios.item_bases(item)
    if bases and not config.option.collectonly:
        BASES.append(subprocess.Popen([harness.BUILD_IMAGE, "bases"]
                                      + scenarios.ordered(bases),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))


NOT_BOOTED = []
BASES = []


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
def variant_image(e2e_dir, deb, keys):
    """``variant_image(suite=, init=, fs=, bus=, layout=)``: the image of that
    variant with the .deb installed, built once per session."""
    built = {}

    def get(layout="plain", **variant):
        key = tuple(sorted(variant.items())) + (("layout", layout),)
        if key not in built:
            name = "-".join(v for _, v in key)
            built[key] = harness.build_image(e2e_dir / f"image-{name}", deb, layout,
                                             root_key=keys["debug"] + ".pub", **variant)
        return built[key]

    yield get
    for image in built.values():
        shutil.rmtree(image.dir, ignore_errors=True)


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
    if NOT_BOOTED:
        terminalreporter.section("e2e scenarios not booted")
        terminalreporter.write_line("not in CI's set (tests/e2e/run --matrix boots them): "
                                    + ", ".join(NOT_BOOTED))
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
