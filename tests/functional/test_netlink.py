"""Pyroute2Netlink's look-ups on a real kernel: they decode the kernel's answer themselves (a raw
socket of their own), so they must say exactly what pyroute2's decoding of the same answer says,
for every kind of device plans meet; and the work it does in the namespace (TAPs, sysctls,
sockets) runs on one thread kept there, which ends with the socket."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from tests.fixtures import Netns
from tests.functional.conftest import Env
from vifplug.host.netlink import Pyroute2Netlink, _link

pytestmark = [
    pytest.mark.root,
]


def test_look_ups_decode_as_pyroute2_does(env: Env) -> None:
    stem = "nl" + uuid.uuid4().hex[:7]
    bridge, veth, peer, tap, mq = (f"{stem}{suffix}" for suffix in ("br", "va", "vb", "tp",
                                                                     "mq"))
    env.leftovers.links += [bridge, veth, peer, tap, mq]
    netlink = Pyroute2Netlink(env.netns.name)
    try:
        netlink.add_bridge(bridge, forward_delay=0, ageing_time=30)
        netlink.add_veth(veth, peer)
        netlink.add_tap(tap, multi_queue=False)
        netlink.add_tap(mq, multi_queue=True)
        master = netlink.get(bridge)
        assert master is not None
        netlink.update(veth, mtu=1450, up=True, group=7)
        netlink.update(peer, up=True)
        netlink.update(bridge, mtu=1450, up=True)
        netlink.set_master(veth, master.index)
        for name in ("lo", bridge, veth, peer, tap, mq):
            link = netlink.get(name)
            assert link == _link(netlink._get_link(name=name)), name
            assert link is not None
            assert netlink.name_of(link.index) == name
        found = netlink.get(veth)
        assert found is not None
        assert (found.kind, found.mtu, found.up, found.master, found.group) == (
            "veth", 1450, True, master.index, 7)
        timers = netlink.get(bridge)
        assert timers is not None
        assert (timers.forward_delay, timers.ageing_time) == (0, 30)
        assert [getattr(netlink.get(name), "tun_flags", None) for name in (tap, mq)] == [
            (True, True, False), (True, True, True)]
        # The port state, as pyroute2's dump of the bridge ports has it.
        dumped = {message["index"]: message.get_attr("IFLA_PROTINFO").get_attr(
            "IFLA_BRPORT_STATE") for message in netlink.ipr.brport("dump")
            if message.get_attr("IFLA_PROTINFO") is not None}
        assert netlink.port_state(veth) == dumped[found.index] == 3
        assert netlink.port_state(peer) is None  # no bridge port
        assert netlink.port_state(bridge) is None
        assert netlink.get(f"{stem}no") is None
        assert netlink.port_state(f"{stem}no") is None
        assert netlink.name_of(2**31 - 1) is None
    finally:
        netlink.close()


def test_work_in_the_namespace_runs_on_one_thread_ended_by_close(env: Env) -> None:
    stem = "nt" + uuid.uuid4().hex[:7]
    names = [f"{stem}{n}" for n in range(5)]
    env.leftovers.links += names
    before = threading.active_count()
    netlink = Pyroute2Netlink(env.netns.name)
    try:
        for name in names:
            netlink.add_bridge(name, forward_delay=0, ageing_time=0)
            netlink.disable_ipv6(name)
            assert netlink.ipv6_disabled(name) is True
        assert threading.active_count() == before + 1
        assert [t.name for t in threading.enumerate()].count(
            f"vifplug-netns-{env.netns.name}") == 1
        # Seen from the namespace: the sysctl written there is this namespace's.
        assert env.netns.run("cat", f"/proc/sys/net/ipv6/conf/{names[0]}/disable_ipv6"
                             ).stdout.strip() == "1"
    finally:
        netlink.close()
    assert threading.active_count() == before
    netlink.get("lo")  # a closed Pyroute2Netlink opens again
    netlink.close()
    assert threading.active_count() == before


def test_a_namespace_that_went_away_fails_the_work_and_leaves_no_thread() -> None:
    before = threading.active_count()
    with Netns() as netns:
        netlink = Pyroute2Netlink(netns.name)
    try:
        with pytest.raises(OSError, match="No such file"):
            netlink.disable_ipv6("lo")
        _settle(before)  # the thread that failed to enter it ends right after saying so
        assert threading.active_count() == before
        with pytest.raises(OSError, match="No such file"):  # tried again, failing again
            netlink.get("lo")
    finally:
        netlink.close()
    assert threading.active_count() == before


def _settle(count: int) -> None:
    for _ in range(200):
        if threading.active_count() == count:
            return
        time.sleep(0.01)
