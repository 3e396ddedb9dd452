"""A metadata service that flaps, on a real boot (issue 29, part 3).

The metadata server (tests/support/metadata_server.py ``--flap-for 20``)
answers 503 and hangs in turn for the first 20 s after the guest's first
request, then serves.  The boot must complete inside the agent's deadline
([main] deadline, 120 s by default): the key logs in, the metadata came from
the service, nothing failed, and the server's log shows the agent came back
after each 503 and hang until it was served.
"""

import uuid

import pytest
from checks import (
    DISK,
    check_host_keys,
    check_no_failed_units,
    check_sudo,
    status,
    write_instance,
)

import harness

pytestmark = [pytest.mark.e2e, pytest.mark.root]

MATRIX = {"metadata-flapping": dict(image={}, ci=True, flap=20)}
DEADLINE = 120  # [main] deadline's default: the search gives up then


@pytest.fixture(scope="class", params=sorted(MATRIX))
def flap_guest(request, plain_image, keys, e2e_dir):
    name = request.param
    d = e2e_dir / name
    u = str(uuid.uuid4())
    tree = write_instance(d / "tree", u, "flap-guest.novalocal",
                          [harness.public_key(keys["user"])])
    with harness.Guest(plain_image, d / "vm", name, key=keys["user"], root_key=keys["debug"],
                       metadata_tree=tree, disk_size=DISK, instance_uuid=u,
                       metadata_args=["--flap-for", str(MATRIX[name]["flap"])]) as g:
        g.wait_ssh()
        g.report_boot()
        g.settle()
        yield g


def _requests(guest):
    """[(method, path, status, unix time)] the server saw."""
    out = []
    for line in guest.metadata_requests():
        method, path, code, when = line.split()
        out.append((method, path, code, float(when)))
    return out


class TestFlappingService:
    def test_the_boot_completes_from_the_service(self, flap_guest):
        check_sudo(flap_guest)
        assert flap_guest.ssh("hostname").stdout.strip() == "flap-guest"
        st = status(flap_guest)
        runs = [r for r in st["runs"] if r.get("stage") == "network"]
        assert runs, f"the network stage did not run: {st['runs']}"
        run = runs[0]
        assert "openstack" in (run.get("source") or ""), run
        assert run.get("exit_code") == 0, run
        failed = [s for r in st["runs"] for s in r.get("steps", []) if s["result"] == "failed"]
        assert not failed, failed
        # whether sshd waited for the keys ([main] ssh_wait, 30 s) or started
        # first and was reloaded for the new host keys, it serves the keys
        # the console printed
        print(f"[e2e] {flap_guest.name}: sshd started before the metadata: "
              f"{run.get('sshd_started_before_metadata') or 'no'}")
        check_host_keys(flap_guest)
        check_no_failed_units(flap_guest)

    def test_it_came_back_after_each_503_and_hang_within_the_deadline(self, flap_guest):
        reqs = _requests(flap_guest)
        codes = [c for _, _, c, _ in reqs]
        assert "503" in codes and "HANG" in codes, codes
        first = reqs[0][3]
        served = next(t for _, _, c, t in reqs if c == "200")
        flap = MATRIX[flap_guest.name]["flap"]
        assert served - first >= flap - 1, (served - first, codes)
        last = reqs[-1][3]
        assert last - first < DEADLINE, f"the search took {last - first:.0f} s"
        tries = codes.index("200")
        print(f"[e2e] {flap_guest.name}: {tries} requests refused (503) or hung before "
              f"the first answer, {served - first:.1f} s after the first request")
