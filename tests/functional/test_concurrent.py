"""Many threads, one Host, a real kernel and a private OVS: concurrent plugs share OVSDB
transactions, and one caller's failure is that caller's alone.

To make "while a transaction is in flight" certain rather than likely, ovsdb-server is stopped
(SIGSTOP) while the first caller's transaction is sent: the other callers' steps then queue
behind it (the test waits for that on the Host's own condition, not on a clock), and go out
together when it resumes. Transactions are counted the way OVSDB counts them: each one vifplug
sends bumps ``Open_vSwitch.next_cfg`` by one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator

import pytest

from tests.fixtures._proc import read_pidfile
from tests.fixtures.ovs import PrivateOvs
from tests.functional.conftest import Env
from vifplug.driver import GenericVIFDriver
from vifplug.host import Host
from vifplug.host.errors import HostError, StepFailed
from vifplug.model import OvsVif

pytestmark = [pytest.mark.root]

DRIVER = GenericVIFDriver(firewall=True)
THREADS = 20


@contextlib.contextmanager
def ovsdb_server_stopped(ovs: PrivateOvs) -> Iterator[Callable[[], None]]:
    """ovsdb-server SIGSTOPped; the context gives the function that resumes it (called again
    on the way out, whatever happened)."""
    pid = read_pidfile(ovs.dir / "ovsdb-server.pid")
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)

    def resume() -> None:
        os.kill(pid, signal.SIGCONT)

    try:
        yield resume
    finally:
        resume()


def descriptors() -> set[str]:
    """What this process's descriptors that can leak with a Host are: sockets, pipes, epolls
    (not regular files a library keeps for the process, such as libuuid's clock)."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(FileNotFoundError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if not target.startswith("/"):
                found.add(f"{fd} {target}")
    return found


def next_cfg(ovs: PrivateOvs) -> int:
    return int(ovs.get("Open_vSwitch", ".", "next_cfg"))


def plug_in_threads(host: Host, vifs: list[OvsVif], env: Env, *, queued: int
                    ) -> dict[str, BaseException | None]:
    """Each VIF plugged by a thread of its own (``plug(wait=True)``): the first VIF's thread
    alone until its transaction is in flight (held there: ovsdb-server is stopped), then the
    others, until ``queued`` callers wait behind it; then ovsdb-server resumes. Each VIF's
    outcome."""
    outcomes: dict[str, BaseException | None] = {}
    commits = host.transactions

    def plug(vif: OvsVif) -> None:
        try:
            DRIVER.plug(vif, host)
            outcomes[vif.id] = None
        except BaseException as exc:
            outcomes[vif.id] = exc

    threads = [threading.Thread(target=plug, args=(vif,), daemon=True) for vif in vifs]
    assert host.ovsdb.bridge_exists(env.br_int)  # connected (and the replica read) first
    with ovsdb_server_stopped(env.ovs) as resume:
        threads[0].start()
        assert commits.wait_for(lambda c: c.in_flight(), 60), "the first plug never committed"
        for thread in threads[1:]:
            thread.start()
        assert commits.wait_for(lambda c: c.waiting() >= queued, 60), (
            f"only {commits.waiting()} callers queued behind the first transaction")
        resume()
        for thread in threads:
            thread.join()
    return outcomes


def hybrid_vifs(env: Env, count: int) -> list[OvsVif]:
    vifs = [env.vif("ovs-hybrid.json") for _ in range(count)]
    assert all(isinstance(vif, OvsVif) for vif in vifs)
    return vifs  # type: ignore[return-value]


def assert_plugged(env: Env, vif: OvsVif) -> None:
    ports = env.ovs.ports(env.br_int)
    assert ports.count(vif.qvo_name) == 1
    assert env.ovs.get("Interface", vif.qvo_name, "external_ids:iface-id") == vif.id
    assert env.ovs.get("Interface", vif.qvo_name, "external_ids:attached-mac") == vif.mac
    assert env.ovs.get("Port", vif.qvo_name, "tag") == "100"  # examples/ovs-hybrid.json
    assert int(env.ovs.get("Interface", vif.qvo_name, "ofport")) >= 1  # plug waited: ready
    for name in (vif.qbr_name, vif.qvb_name, vif.qvo_name):
        link = env.netns.link(name)
        assert link is not None, name
        assert "UP" in link["flags"], name


def assert_gone(env: Env, vif: OvsVif) -> None:
    assert vif.qvo_name not in env.ovs.ports(env.br_int)
    for name in (vif.qbr_name, vif.qvb_name, vif.qvo_name):
        assert env.netns.link(name) is None, name


def test_concurrent_plugs_share_transactions(env: Env) -> None:
    vifs = hybrid_vifs(env, THREADS)
    host = env.host("native")
    fds = descriptors()
    before = next_cfg(env.ovs)
    outcomes = plug_in_threads(host, vifs, env, queued=THREADS - 1)
    assert outcomes == {vif.id: None for vif in vifs}
    transactions = next_cfg(env.ovs) - before
    assert transactions < THREADS
    assert transactions == host.transactions.stats.transactions == 2  # the first, the rest
    assert host.transactions.stats.largest == THREADS - 1
    for vif in vifs:
        assert_plugged(env, vif)
    DRIVER.unplug_many(vifs, host)
    for vif in vifs:
        assert_gone(env, vif)
    # Twenty threads used the Host's netlink; the Host keeps two sockets, and closing it
    # leaves no descriptor behind.
    host.close()
    assert descriptors() == fds


def test_one_failing_caller_fails_alone(env: Env) -> None:
    """Two of the twenty VIFs cannot be plugged: one because an operator's TAP holds its
    qvb name (the link phase fails before its steps reach a transaction), one because a port
    of its qvo name is on another OVS bridge (its steps break the shared transaction, which
    goes out again caller by caller). Those two callers fail and roll back what they made;
    the other eighteen are plugged; the operator's device and port are untouched."""
    vifs = hybrid_vifs(env, THREADS)
    host = env.host("native")
    on_link, on_ovsdb = vifs[3], vifs[11]  # vifs[0] goes first: its transaction is its own
    env.netns.add_tap(on_link.qvb_name)
    env.ovs.vsctl("add-br", "brop", "--", "set", "Bridge", "brop", "datapath_type=netdev")
    env.leftovers.bridges.append("brop")
    # A patch port: no kernel device of that name, so vifplug's veth can be made, and the
    # conflict is OVSDB's alone.
    env.ovs.vsctl("add-port", "brop", on_ovsdb.qvo_name, "--", "set", "Interface",
                  on_ovsdb.qvo_name, "type=patch", "options:peer=nowhere")
    outcomes = plug_in_threads(host, vifs, env, queued=THREADS - 2)

    link_error = outcomes.pop(on_link.id)
    assert isinstance(link_error, StepFailed)
    assert link_error.rolled_back
    assert on_link.qvb_name in str(link_error)
    ovsdb_error = outcomes.pop(on_ovsdb.id)
    assert isinstance(ovsdb_error, StepFailed)
    assert ovsdb_error.rolled_back
    assert isinstance(ovsdb_error.cause, HostError)
    assert f"OVS port {on_ovsdb.qvo_name} is already on bridge brop" in str(ovsdb_error)
    assert set(outcomes.values()) == {None}
    for vif in vifs:
        if vif not in (on_link, on_ovsdb):
            assert_plugged(env, vif)
    # The failing callers' own devices are gone; the operator's TAP and port stay.
    for name in (on_link.qbr_name, on_ovsdb.qbr_name, on_ovsdb.qvb_name):
        assert env.netns.link(name) is None, name
    operators = env.netns.link(on_link.qvb_name)
    assert operators is not None
    assert operators.get("linkinfo", {}).get("info_kind") == "tun"
    assert env.ovs.ports("brop") == [on_ovsdb.qvo_name]
    # The first alone; the shared one, which failed; then again caller by caller.
    assert host.transactions.stats.transactions == 1 + 1 + (THREADS - 2)
    DRIVER.unplug_many([vif for vif in vifs if vif not in (on_link, on_ovsdb)], host)
