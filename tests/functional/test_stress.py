"""Stress on the real host edge (the session's private OVS in its netns, userspace datapath):

- a plug SIGKILLed at many points (timed, once devices appear, before or inside chosen steps)
  leaves no lock held and no stray process; the next plug converges to exactly a clean plug's
  state, and unplug then leaves the host as it was before;
- eight processes plugging one VIF at once (both OVSDB backends) make exactly one set of devices
  and one OVS port; eight processes plugging eight VIFs at once plug all eight;
- 1,000 plug/unplug cycles leak no device, OVS row, file descriptor, thread or lock file;
- unplug moves a VIF's devices into a link group of its own request before deleting the group:
  a killed unplug's devices are put back in group 0 by the next plug, and concurrent unplugs of
  different VIFs never delete each other's devices.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from pytest_mock import MockerFixture

from tests.fixtures import Netns, PrivateOvs
from tests.fixtures.snapshot import HostSnapshot, host_snapshot, ovsdb_rows
from vifplug.driver import GenericVIFDriver
from vifplug.host import Host
from vifplug.host.apply import LOCK_DIR
from vifplug.host.netlink import Pyroute2Netlink
from vifplug.loading import load_vifs
from vifplug.model import Vif

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
BATCH = 20  # VIFs in the plug that gets killed: 60 devices, so kills land mid-plug
PROCESSES = 8
CYCLES = 1000
MTU = 1450  # examples/ovs-hybrid.json and ovs-manual.json

pytestmark = [
    pytest.mark.root,
]


# Plugs (or unplugs) the VIFs of a file in a separate process, to be SIGKILLed: by the test
# (after "go", at a time or once devices appear) or by itself at an exact point: before the step
# described by ``kill_before`` (a fault injected with vifplug.host.faults), right after the
# Pyroute2Netlink/NativeOvsdb method ``kill_after`` returns, or when unplug sends its one
# link-group delete request.
DRIVER = r'''
import contextlib, json, os, signal, sys, warnings
from pathlib import Path

warnings.simplefilter("ignore")
from vifplug.driver import GenericVIFDriver
from vifplug.host import Host
from vifplug.host.faults import injected
from vifplug.host.netlink import Pyroute2Netlink
from vifplug.host.ovsdb import NativeOvsdb
from vifplug.loading import load_vifs

config = json.loads(sys.argv[1])


def die():
    os.kill(os.getpid(), signal.SIGKILL)


fault = None
if config.get("kill_before"):
    def fault(step):
        if str(step) == config["kill_before"]:
            die()
if config.get("kill_after"):
    owner, name = config["kill_after"].split(".")
    cls = {"Pyroute2Netlink": Pyroute2Netlink, "NativeOvsdb": NativeOvsdb}[owner]
    original = getattr(cls, name)

    def killing(*args, **kwargs):
        original(*args, **kwargs)
        die()

    setattr(cls, name, killing)
if config.get("kill_at_group_delete"):
    real_ipr = Pyroute2Netlink.ipr.fget

    class Dying:
        def __init__(self, ipr):
            self.ipr = ipr

        def link(self, command, **kwargs):
            if command == "del" and "group" in kwargs:
                die()
            return self.ipr.link(command, **kwargs)

        def __getattr__(self, name):
            return getattr(self.ipr, name)

    Pyroute2Netlink.ipr = property(lambda netlink: Dying(real_ipr(netlink)))

vifs = load_vifs(Path(config["vifs"]))
host = Host(netns=config["netns"], ovsdb=config["ovsdb"], lock_dir=Path(config["lock_dir"]))
host.netlink.get("lo")  # open the netlink socket and the OVSDB connection before "ready"
host.ovsdb.bridge_exists("br-int")
print("ready", flush=True)
sys.stdin.readline()
driver = GenericVIFDriver()
with injected(host, fault) if fault is not None else contextlib.nullcontext():
    if config["action"] == "plug":
        driver.plug_many(vifs, host)
    else:
        driver.unplug_many(vifs, host)
print("done", flush=True)
'''

# The `vifplug` command (its entry point, vifplug.cli.main, with the same argv) behind a barrier:
# the slow imports happen first, then it prints "ready" and waits for the file named by argv[1],
# so the eight plugs really start together.
CLI_DRIVER = r'''
import os, sys, time, warnings

warnings.simplefilter("ignore")
import pyroute2
import ovsdbapp.backend.ovs_idl.connection
import ovsdbapp.backend.ovs_idl.idlutils
import ovsdbapp.schema.open_vswitch.impl_idl
import vifplug.driver, vifplug.host.apply, vifplug.host.netlink, vifplug.host.ovsdb
from vifplug.cli import main

print("ready", flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.0005)
sys.exit(main(sys.argv[2:]))
'''


# --- VIFs and host state -----------------------------------------------------------------------


def assert_audit_clean(netns: Netns, ovs: PrivateOvs, lock_dir: Path | None) -> None:
    """``vifplug audit`` of the namespace finds nothing: no domain runs here, so anything
    vifplug-shaped a stress test left behind (a device, an OVS port, a lock file) would be an
    orphan or a foreign object (issue 13: audit after every stress test reports the host
    clean)."""
    from vifplug.audit import audit, report_text
    from vifplug.host.apply import LOCK_DIR
    from vifplug.host.inventory import read_inventory

    with Host(netns=netns.name, ovsdb=ovs.db, lock_dir=lock_dir) as host:
        result = audit(read_inventory(host, lock_dir or LOCK_DIR), ())
    assert result.clean, report_text(result)


def vif_data(example: str = "ovs-hybrid.json", *, vlan: int = 100) -> dict[str, Any]:
    """A copy of ``examples/<example>`` with a fresh id (= interface id), MAC and this VLAN."""
    data: dict[str, Any] = json.loads((EXAMPLES / example).read_text())
    new_id = str(uuid.uuid4())
    data["id"] = new_id
    data["ovs"]["interface_id"] = new_id
    data["mac"] = "fa:16:3e:" + ":".join(uuid.uuid4().hex[i:i + 2] for i in (0, 2, 4))
    data["network"]["vlan"] = vlan
    return data


def hybrid_devices(vif: Vif) -> set[str]:
    return {vif.qbr_name, vif.qvb_name, vif.qvo_name}


def plugged_state(netns: Netns, ovs: PrivateOvs) -> HostSnapshot:
    """The host snapshot without MAC addresses (a bridge or veth made again gets a new random
    MAC); every other thing plug sets must be identical."""
    snap = host_snapshot(netns, ovs)
    links = {name: {key: value for key, value in link.items() if key != "address"}
             for name, link in snap.links.items()}
    return HostSnapshot(links, snap.ovsdb)


def assert_same(actual: HostSnapshot, expected: HostSnapshot, what: str) -> None:
    assert actual == expected, f"{what}:\n" + "\n".join(actual.diff(expected))


def assert_locks_free(lock_dir: Path) -> None:
    """Every lock file in ``lock_dir`` can be taken now: a killed holder's flock died with it."""
    for path in lock_dir.glob("*.lock"):
        fd = os.open(path, os.O_RDWR)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pytest.fail(f"{path} is still locked after its holder was killed")
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def check_hybrid_plugged(netns: Netns, ovs: PrivateOvs, vif: Vif, *, vlan: int) -> None:
    """Exactly one set of devices for ``vif`` (qbr; qvb/qvo veth peers; qvb on the qbr; all up,
    MTU 1450) and exactly one OVS port, on br-int, with the VIF's external_ids and tag."""
    links = {link["ifname"]: link for link in netns.links()}
    suffix = vif.id[:11]
    assert {name for name in links if suffix in name} == hybrid_devices(vif)
    qbr, qvb, qvo = links[vif.qbr_name], links[vif.qvb_name], links[vif.qvo_name]
    assert [link["linkinfo"]["info_kind"] for link in (qbr, qvb, qvo)] == \
        ["bridge", "veth", "veth"]
    assert (qvb.get("link"), qvo.get("link")) == (vif.qvo_name, vif.qvb_name)  # peers
    assert (qvb.get("master"), qvo.get("master"), qbr.get("master")) == (vif.qbr_name, None, None)
    assert [link["mtu"] for link in (qbr, qvb, qvo)] == [MTU] * 3
    assert all("UP" in link["flags"] for link in (qbr, qvb, qvo))
    rows = ovsdb_rows(ovs)
    assert {name for name in rows["Port"] if suffix in name} == {vif.qvo_name}
    assert {name for name in rows["Interface"] if suffix in name} == {vif.qvo_name}
    assert vif.qvo_name in rows["Bridge"]["br-int"]["ports"]
    assert vif.ovs is not None
    assert rows["Interface"][vif.qvo_name]["external_ids"] == {
        "iface-id": vif.ovs.interface_id, "iface-status": "active", "attached-mac": vif.mac}
    assert rows["Interface"][vif.qvo_name]["mtu_request"] == MTU
    assert rows["Port"][vif.qvo_name]["tag"] == vlan


@contextlib.contextmanager
def unplugged_after(vifs: Sequence[Vif], netns: Netns, ovs: PrivateOvs,
                    lock_dir: Path | None) -> Iterator[None]:
    """Unplug ``vifs`` on exit, even when the body failed (idempotent); then remove whatever
    of theirs is still there with ``ip``/``ovs-vsctl``, so a vifplug bug cannot leak it."""
    try:
        yield
    finally:
        try:
            with Host(netns=netns.name, ovsdb=ovs.db, lock_dir=lock_dir) as host:
                GenericVIFDriver().unplug_many(vifs, host)
        finally:
            names = {name for vif in vifs for name in (*hybrid_devices(vif), vif.tap_name)}
            for port in set(ovs.vsctl("list-ports", "br-int").split()) & names:
                ovs.vsctl("--if-exists", "del-port", port, check=False)
            for link in {link["ifname"] for link in netns.links()} & names:
                netns.ip("link", "delete", "dev", link, check=False)


# --- a killable plug in another process -------------------------------------------------------


def run_driver(config: dict[str, Any],
               kill: Callable[[subprocess.Popen[str]], None] | None = None) -> tuple[int, str]:
    """Start DRIVER, wait for "ready", say "go", run ``kill`` (which SIGKILLs it), reap it.
    Returns (returncode, stderr)."""
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, json.dumps(config)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdin is not None
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        if ready != "ready\n":
            _, err = proc.communicate(timeout=30)
            pytest.fail(f"driver did not start: {ready!r} {err}")
        proc.stdin.write("go\n")
        proc.stdin.flush()
        if kill is not None:
            kill(proc)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err


def kill_after(seconds: float) -> Callable[[subprocess.Popen[str]], None]:
    def kill(proc: subprocess.Popen[str]) -> None:
        if seconds:
            time.sleep(seconds)
        proc.kill()  # SIGKILL to this process, by its PID
    return kill


def kill_when_devices(netns: Netns, names: set[str],
                      count: int) -> Callable[[subprocess.Popen[str]], None]:
    """SIGKILL once ``count`` of ``names`` exist (polling ``ip -n NS link``)."""
    def kill(proc: subprocess.Popen[str]) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            present = {link["ifname"] for link in netns.links()} & names
            if len(present) >= count:
                proc.kill()
                return
        pytest.fail(f"the plug ended (rc {proc.poll()}) before {count} devices appeared")
    return kill


class Batch:
    """BATCH hybrid VIFs in a file, and the host state a clean plug of them leaves."""

    def __init__(self, path: Path, vifs: list[Vif], plugged: HostSnapshot) -> None:
        self.path = path
        self.vifs = vifs
        self.plugged = plugged
        self.devices = set().union(*(hybrid_devices(vif) for vif in vifs))


@pytest.fixture(scope="module")
def batch(netns: Netns, ovs: PrivateOvs, br_int: str,
          tmp_path_factory: pytest.TempPathFactory) -> Batch:
    directory = tmp_path_factory.mktemp("batch")
    path = directory / "vifs.json"
    path.write_text(json.dumps([vif_data() for _ in range(BATCH)]))
    vifs = load_vifs(path)
    before = host_snapshot(netns, ovs)
    with unplugged_after(vifs, netns, ovs, directory):
        with Host(netns=netns.name, ovsdb=ovs.db, lock_dir=directory) as host:
            outcome = GenericVIFDriver().plug_many(vifs, host)
        assert not outcome.already_done
        plugged = plugged_state(netns, ovs)
        for vif in vifs:
            check_hybrid_plugged(netns, ovs, vif, vlan=100)
    assert_same(host_snapshot(netns, ovs), before, "a clean unplug left the host changed")
    return Batch(path, vifs, plugged)


@pytest.fixture
def lock_dir(tmp_path: Path) -> Path:
    path = tmp_path / "locks"
    path.mkdir()
    return path


@pytest.fixture
def before(netns: Netns, ovs: PrivateOvs, br_int: str) -> HostSnapshot:
    return host_snapshot(netns, ovs)


# --- SIGKILL mid-plug ------------------------------------------------------------------------


def _step(batch: Batch, kind: str, index: int) -> str:
    """The description of VIF ``index``'s step of type ``kind`` (what DRIVER's injected fault
    matches)."""
    plan = GenericVIFDriver().plan(batch.vifs[index])
    (step,) = [step for step in plan.steps if type(step).__name__ == kind]
    return str(step)


KILLS: dict[str, Callable[[Batch, Netns], dict[str, Any]]] = {
    # by the clock, right after the plug starts
    "at 0 ms": lambda b, n: {"kill": kill_after(0)},
    "after 20 ms": lambda b, n: {"kill": kill_after(0.020)},
    "after 50 ms": lambda b, n: {"kill": kill_after(0.050)},
    # once devices show up in the namespace
    "after 1 device": lambda b, n: {"kill": kill_when_devices(n, b.devices, 1)},
    "after 30 devices": lambda b, n: {"kill": kill_when_devices(n, b.devices, 30)},
    # at exact points, by the plug itself
    "before VIF 7's veth": lambda b, n: {"kill_before": _step(b, "EnsureVeth", 7)},
    "before VIF 7's enslaving": lambda b, n: {"kill_before": _step(b, "EnsureMaster", 7)},
    "before the OVSDB transaction": lambda b, n: {"kill_before": _step(b, "EnsureOvsPort", 0)},
    "inside: qbr made, still down": lambda b, n: {"kill_after": "Pyroute2Netlink.add_bridge"},
    "inside: veth made, ends down": lambda b, n: {"kill_after": "Pyroute2Netlink.add_veth"},
    "after the OVSDB commit": lambda b, n: {"kill_after": "NativeOvsdb.commit"},
}


@pytest.mark.parametrize("point", list(KILLS))
def test_sigkill_mid_plug_then_plug_converges_and_unplug_restores(
        point: str, batch: Batch, netns: Netns, ovs: PrivateOvs, lock_dir: Path) -> None:
    before = host_snapshot(netns, ovs)
    how = KILLS[point](batch, netns)
    daemons = set(netns.run_pids())
    config = {"action": "plug", "vifs": str(batch.path), "netns": netns.name, "ovsdb": ovs.db,
              "lock_dir": str(lock_dir), "kill_before": how.get("kill_before"),
              "kill_after": how.get("kill_after")}
    with unplugged_after(batch.vifs, netns, ovs, lock_dir):
        returncode, err = run_driver(config, how.get("kill"))
        assert returncode == -signal.SIGKILL, f"the plug was not killed mid-way: {err}"
        if not point.startswith(("at ", "after 20", "after 50")):  # killed holding the locks
            assert len(list(lock_dir.glob("*.lock"))) == BATCH
        assert_locks_free(lock_dir)
        assert set(netns.run_pids()) == daemons, "the killed plug left processes behind"

        with Host(netns=netns.name, ovsdb=ovs.db, lock_dir=lock_dir) as host:
            GenericVIFDriver().plug_many(batch.vifs, host)
            assert_same(plugged_state(netns, ovs), batch.plugged,
                        f"plug after a kill {point} differs from a clean plug")
            again = GenericVIFDriver().plug_many(batch.vifs, host)
            assert again.already_done
            GenericVIFDriver().unplug_many(batch.vifs, host)
        assert_same(host_snapshot(netns, ovs), before, "unplug did not restore the host")
        assert_audit_clean(netns, ovs, lock_dir)


def test_a_kill_before_a_step_leaves_the_host_half_plugged(
        batch: Batch, netns: Netns, ovs: PrivateOvs, before: HostSnapshot,
        lock_dir: Path) -> None:
    """The kill points above really leave the host half-plugged (so the convergence they check
    is not vacuous): killed before VIF 7's veth, VIFs 0-6 have all their devices, VIF 7 only
    its qbr, and no OVS port exists."""
    config = {"action": "plug", "vifs": str(batch.path), "netns": netns.name, "ovsdb": ovs.db,
              "lock_dir": str(lock_dir), "kill_before": _step(batch, "EnsureVeth", 7)}
    with unplugged_after(batch.vifs, netns, ovs, lock_dir):
        returncode, err = run_driver(config)
        assert returncode == -signal.SIGKILL, err
        present = {link["ifname"] for link in netns.links()} & batch.devices
        expected = set().union(*(hybrid_devices(vif) for vif in batch.vifs[:7]))
        assert present == expected | {batch.vifs[7].qbr_name}
        assert ovs.ports("br-int") == []


# --- many processes at once ----------------------------------------------------------------------


def run_cli_together(argvs: list[list[str]], go: Path) -> list[tuple[int, str, str]]:
    """Start one CLI_DRIVER per argv, wait until all are ready, release them at once."""
    procs = [subprocess.Popen([sys.executable, "-c", CLI_DRIVER, str(go), *argv],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for argv in argvs]
    results: list[tuple[int, str, str]] = []
    try:
        for proc in procs:
            assert proc.stdout is not None
            ready = proc.stdout.readline()
            if ready != "ready\n":
                pytest.fail(f"CLI driver did not start: {ready!r} {proc.communicate()[1]}")
        go.touch()
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            results.append((proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return results


@pytest.mark.parametrize("backend", ["native", "vsctl"])
def test_eight_processes_plug_one_vif_at_once(backend: str, netns: Netns, ovs: PrivateOvs,
                                              before: HostSnapshot, tmp_path: Path) -> None:
    path = tmp_path / "vif.json"
    path.write_text(json.dumps(vif_data()))
    (vif,) = load_vifs(path)
    ports_before = ovs.ports("br-int")
    argv = ["plug", "--netns", netns.name, "--ovsdb", ovs.db, "--ovsdb-backend", backend,
            str(path)]
    try:
        with unplugged_after([vif], netns, ovs, None):
            results = run_cli_together([argv] * PROCESSES, tmp_path / "go")
            assert [rc for rc, _, _ in results] == [0] * PROCESSES, results
            said = sorted(out.split(":")[0] for _, out, _ in results)
            # The per-VIF lock serialises them: one plugs, the seven others find it done.
            assert said == ["VIF"] * (PROCESSES - 1) + ["plugged VIF"], results
            assert sum("already plugged" in out for _, out, _ in results) == PROCESSES - 1
            check_hybrid_plugged(netns, ovs, vif, vlan=100)
            assert sorted(ovs.ports("br-int")) == sorted([*ports_before, vif.qvo_name])
    finally:
        remove_cli_locks(netns, [vif.id])
    assert_same(host_snapshot(netns, ovs), before, "unplug did not restore the host")
    assert_audit_clean(netns, ovs, None)


@pytest.mark.parametrize("backend", ["native", "vsctl"])
def test_eight_processes_plug_eight_vifs_at_once(backend: str, netns: Netns, ovs: PrivateOvs,
                                                 before: HostSnapshot, tmp_path: Path) -> None:
    paths = []
    for index in range(PROCESSES):
        paths.append(tmp_path / f"vif{index}.json")
        paths[-1].write_text(json.dumps(vif_data(vlan=100 + index)))
    vifs = [load_vifs(path)[0] for path in paths]
    ports_before = ovs.ports("br-int")
    argvs = [["plug", "--netns", netns.name, "--ovsdb", ovs.db, "--ovsdb-backend", backend,
              str(path)] for path in paths]
    try:
        with unplugged_after(vifs, netns, ovs, None):
            results = run_cli_together(argvs, tmp_path / "go")
            assert [rc for rc, _, _ in results] == [0] * PROCESSES, results
            assert all(out.startswith("plugged VIF: 4 changes") for _, out, _ in results), \
                results
            for index, vif in enumerate(vifs):
                check_hybrid_plugged(netns, ovs, vif, vlan=100 + index)
            assert sorted(ovs.ports("br-int")) == sorted(
                [*ports_before, *(vif.qvo_name for vif in vifs)])
    finally:
        remove_cli_locks(netns, [vif.id for vif in vifs])
    assert_same(host_snapshot(netns, ovs), before, "unplug did not restore the host")
    assert_audit_clean(netns, ovs, None)


def remove_cli_locks(netns: Netns, vif_ids: list[str]) -> None:
    """The CLI locks in /run/vifplug/locks (it has no --lock-dir option): remove ours."""
    for vif_id in vif_ids:
        with contextlib.suppress(FileNotFoundError):
            (LOCK_DIR / f"netns-{netns.name}-{vif_id}.lock").unlink()


# --- 1,000 cycles ------------------------------------------------------------------------------


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_thousand_plug_unplug_cycles_leak_nothing(netns: Netns, ovs: PrivateOvs,
                                                  before: HostSnapshot, lock_dir: Path) -> None:
    """1,000 cycles in all, one Host kept open: half a hybrid VIF (qbr + veth pair + port), half
    a manual one (multi-queue TAP + port). Each cycle really plugs and really unplugs; the
    plugged state of the last cycle is the first's; afterwards the host, the process's file
    descriptors and threads, and the lock directory (one file per VIF) are as before."""
    vifs = [load_vifs(vif_data())[0], load_vifs(vif_data("ovs-manual.json"))[0]]
    driver = GenericVIFDriver()
    # Once per process, the ovs library opens libuuid's clock file and keeps it: warm up with a
    # Host of its own first, so what is counted below is what Hosts leave behind.
    with Host(netns=netns.name, ovsdb=ovs.db, lock_dir=lock_dir) as warm:
        driver.plug(vifs[0], warm)
        driver.unplug(vifs[0], warm)
    fds_before, threads_before = open_fds(), threading.active_count()
    timings: dict[str, float] = {}
    host = Host(netns=netns.name, ovsdb=ovs.db, lock_dir=lock_dir)
    try:
        for vif in vifs:
            start = time.perf_counter()
            for cycle in range(CYCLES // len(vifs)):
                plugged = driver.plug(vif, host)
                assert not plugged.already_done, cycle
                if cycle == 0:
                    first = plugged_state(netns, ovs)
                    fds_open = open_fds()
                elif cycle == CYCLES // len(vifs) - 1:
                    assert_same(plugged_state(netns, ovs), first,
                                f"cycle {cycle} plugged {vif.id} differently from cycle 0")
                unplugged = driver.unplug(vif, host)
                assert not unplugged.already_done, cycle
            assert open_fds() == fds_open, "file descriptors leaked while cycling"
            timings[driver.select(vif).name] = time.perf_counter() - start
    finally:
        with contextlib.suppress(Exception):
            driver.unplug_many(vifs, host)
        host.close()
    assert_same(host_snapshot(netns, ovs), before, f"{CYCLES} cycles left the host changed")
    assert_audit_clean(netns, ovs, lock_dir)
    assert open_fds() == fds_before, "file descriptors leaked by the Host"
    assert threading.active_count() == threads_before, "threads left running by the Host"
    assert list(lock_dir.iterdir()) == []  # a successful unplug removes its VIF's lock file
    print(f"{CYCLES} plug/unplug cycles: " + ", ".join(
        f"{CYCLES // len(vifs)} {name} in {seconds:.1f} s ({1000 * seconds / (CYCLES // 2):.0f}"
        " ms/cycle)" for name, seconds in timings.items()))


# --- unplug's link groups: one per request, and plug puts a killed unplug's devices back ----------

def test_plug_after_an_unplug_killed_at_its_delete_converges(
        netns: Netns, ovs: PrivateOvs, before: HostSnapshot, lock_dir: Path,
        tmp_path: Path) -> None:
    path = tmp_path / "vif.json"
    path.write_text(json.dumps(vif_data()))
    vifs = load_vifs(path)
    with unplugged_after(vifs, netns, ovs, lock_dir), \
            Host(netns=netns.name, ovsdb=ovs.db, lock_dir=lock_dir) as host:
        GenericVIFDriver().plug_many(vifs, host)
        clean = plugged_state(netns, ovs)
        returncode, err = run_driver({"action": "unplug", "vifs": str(path),
                                      "netns": netns.name, "ovsdb": ovs.db,
                                      "lock_dir": str(lock_dir), "kill_at_group_delete": True})
        assert returncode == -signal.SIGKILL, err
        GenericVIFDriver().plug_many(vifs, host)
        assert_same(plugged_state(netns, ovs), clean,
                    "plug after a killed unplug differs from a clean plug")


def test_unplug_of_one_vif_spares_another_after_a_killed_unplug(
        netns: Netns, ovs: PrivateOvs, before: HostSnapshot, lock_dir: Path,
        tmp_path: Path) -> None:
    path_a = tmp_path / "a.json"
    path_a.write_text(json.dumps(vif_data()))
    (vif_a,) = load_vifs(path_a)
    vif_b = load_vifs(vif_data())[0]
    with unplugged_after([vif_a, vif_b], netns, ovs, lock_dir), \
            Host(netns=netns.name, ovsdb=ovs.db, lock_dir=lock_dir) as host:
        GenericVIFDriver().plug_many([vif_a, vif_b], host)
        returncode, err = run_driver({"action": "unplug", "vifs": str(path_a),
                                      "netns": netns.name, "ovsdb": ovs.db,
                                      "lock_dir": str(lock_dir), "kill_at_group_delete": True})
        assert returncode == -signal.SIGKILL, err
        GenericVIFDriver().plug(vif_a, host)  # A is plugged again
        check_hybrid_plugged(netns, ovs, vif_a, vlan=100)
        GenericVIFDriver().unplug(vif_b, host)
        check_hybrid_plugged(netns, ovs, vif_a, vlan=100)


def test_concurrent_unplugs_of_two_vifs_both_succeed(
        netns: Netns, ovs: PrivateOvs, before: HostSnapshot, lock_dir: Path,
        mocker: MockerFixture) -> None:
    vif_a, vif_b = (load_vifs(vif_data())[0] for _ in range(2))
    driver = GenericVIFDriver()
    with unplugged_after([vif_a, vif_b], netns, ovs, lock_dir), \
            Host(netns=netns.name, ovsdb=ovs.db, lock_dir=lock_dir) as host_a, \
            Host(netns=netns.name, ovsdb=ovs.db, lock_dir=lock_dir) as host_b:
        driver.plug_many([vif_a, vif_b], host_a)
        real_ipr: Callable[[Pyroute2Netlink], Any] = Pyroute2Netlink.__dict__["ipr"].fget

        class Interleaved:
            """Host A's socket: just before A's group delete, B's whole unplug runs (as another
            process's would, on its own socket)."""

            def __init__(self, ipr: Any) -> None:
                self.ipr = ipr

            def link(self, command: str, **kwargs: Any) -> Any:
                if command == "del" and "group" in kwargs:
                    driver.unplug(vif_b, host_b)
                return self.ipr.link(command, **kwargs)

            def __getattr__(self, name: str) -> Any:
                return getattr(self.ipr, name)

        mocker.patch.object(Pyroute2Netlink, "ipr", property(
            lambda netlink: Interleaved(real_ipr(netlink)) if netlink is host_a.netlink
            else real_ipr(netlink)))
        driver.unplug(vif_a, host_a)
    assert_same(host_snapshot(netns, ovs), before, "the two unplugs left the host changed")
