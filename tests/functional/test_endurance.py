"""A long-lived Host must not grow: every netlink request vifplug sends is read to its end.

An agent keeps one Host (one netlink socket) for days. A request whose answer pyroute2 stops
reading early leaves the rest queued on the socket for as long as it lives: pyroute2 0.9.7's
``link("get")`` left the kernel's ACK of every successful look-up behind (20,000 look-ups: 20,001
messages queued, +33 MB). These tests count what the socket holds unread
(tests/fixtures/replies.py: pyroute2's own queues, and the kernel's receive queue) — never
memory, never time: after each netlink operation vifplug makes, including its error paths, and
after many plug/unplug cycles of hybrid, manual and ethernet VIFs through one Host, where the count
must be 0 and stay 0 however many cycles ran. (bench/soak.py measures RSS, fds and threads over
10,000 cycles, by hand.)
"""

from __future__ import annotations

import errno
import uuid
from collections.abc import Callable

import pytest
from pyroute2 import NetlinkError

from tests.fixtures.replies import Unread, unread_replies
from tests.functional.conftest import Env
from vifplug.driver import GenericVIFDriver
from vifplug.host import Host
from vifplug.host.errors import HostError
from vifplug.host.netlink import Pyroute2Netlink

pytestmark = [
    pytest.mark.root,
]

#: Cycles before the first count, and in all before the second (the count must not grow).
FIRST, TOTAL = 3, 12


def test_every_netlink_operation_reads_its_whole_answer(env: Env) -> None:
    """Each operation of Pyroute2Netlink, succeeding and failing as plugs meet them, leaves
    nothing unread on the socket."""
    stem = "en" + uuid.uuid4().hex[:7]
    bridge, veth, peer, vlan, tap = (f"{stem}{suffix}" for suffix in ("br", "va", "vb", "vl",
                                                                        "tp"))
    env.leftovers.links += [bridge, veth, peer, vlan, tap]
    netlink = Pyroute2Netlink(env.netns.name)
    try:
        lo = netlink.get("lo")
        assert lo is not None
        group = 4242
        index: list[int] = []  # the peer's and the bridge's, read once they exist
        operations: list[tuple[str, Callable[[], object]]] = [
            ("get (found)", lambda: netlink.get("lo")),
            ("get (ENODEV)", lambda: netlink.get(f"{stem}no")),
            ("name_of (found)", lambda: netlink.name_of(lo.index)),
            ("name_of (ENODEV)", lambda: netlink.name_of(2**31 - 1)),
            ("add_bridge", lambda: netlink.add_bridge(bridge, forward_delay=0, ageing_time=0)),
            ("add_bridge (EEXIST)",
             lambda: netlink.add_bridge(bridge, forward_delay=0, ageing_time=0)),
            ("set_bridge", lambda: netlink.set_bridge(bridge, forward_delay=0, ageing_time=10)),
            ("set_bridge (ENODEV)",
             lambda: netlink.set_bridge(f"{stem}no", forward_delay=0, ageing_time=10)),
            ("add_veth", lambda: netlink.add_veth(veth, peer)),
            ("add_veth (EEXIST)", lambda: netlink.add_veth(veth, peer)),
            # Looks the parent up first; the add then fails here (no 8021q: EOPNOTSUPP).
            ("add_vlan", lambda: netlink.add_vlan(vlan, peer, 7)),
            ("add_vlan (no parent)", lambda: netlink.add_vlan(vlan, f"{stem}no", 7)),
            ("add_tap", lambda: netlink.add_tap(tap, multi_queue=True)),
            ("update by name", lambda: netlink.update(veth, mtu=1450, up=True)),
            ("update by index", lambda: netlink.update(peer, mtu=1450, up=True, index=index[0])),
            ("update (ENODEV)", lambda: netlink.update(f"{stem}no", mtu=1450)),
            ("update (EINVAL)", lambda: netlink.update(veth, mtu=10)),
            ("set_master", lambda: netlink.set_master(veth, index[1])),
            ("port_state (a bridge port)", lambda: netlink.port_state(veth)),
            ("port_state (no port)", lambda: netlink.port_state(peer)),
            ("port_state (ENODEV)", lambda: netlink.port_state(f"{stem}no")),
            ("set_master (none)", lambda: netlink.set_master(veth, None)),
            ("set_master (a bridge into itself)", lambda: netlink.set_master(bridge, index[1])),
            ("ipv6_disabled", lambda: netlink.ipv6_disabled(bridge)),
            ("disable_ipv6", lambda: netlink.disable_ipv6(bridge)),
            ("delete", lambda: netlink.delete(tap)),
            ("delete (ENODEV)", lambda: netlink.delete(tap)),
            ("delete (EOPNOTSUPP: lo)", lambda: netlink.delete("lo")),
            ("update group", lambda: netlink.update(bridge, group=group)),
            ("update group by index", lambda: netlink.update(peer, group=group, index=index[0])),
            ("delete_group", lambda: netlink.delete_group(group)),
            ("delete_group (ENODEV)", lambda: netlink.delete_group(group)),
        ]
        left: list[str] = []
        outcomes: dict[str, str] = {}
        for label, operation in operations:
            if label == "update by name":  # the devices exist now: their indexes, read first
                index[:] = [_index(netlink, peer), _index(netlink, bridge)]
            before = unread_replies(netlink)
            outcomes[label] = _outcome(operation)
            after = unread_replies(netlink)
            if after.queued != before.queued or after.in_kernel:
                left.append(f"{label} ({outcomes[label]}): {before} -> {after}")
        assert left == [], "operations that left replies unread:\n" + "\n".join(left)
        assert unread_replies(netlink) == Unread(queued=0, in_kernel=False)
        # The error paths were really taken (else this test would not check them).
        assert outcomes["get (ENODEV)"] == "None"
        assert outcomes["name_of (ENODEV)"] == "None"
        assert outcomes["port_state (no port)"] == outcomes["port_state (ENODEV)"] == "None"
        assert outcomes["port_state (a bridge port)"] != "None"
        assert outcomes["add_bridge (EEXIST)"] == "EEXIST"
        assert outcomes["update (ENODEV)"] == "ENODEV"
        assert outcomes["delete (ENODEV)"] == "False"
        assert outcomes["delete_group (ENODEV)"] == "ENODEV"
        assert outcomes["add_vlan (no parent)"] == "HostError"
    finally:
        netlink.close()


def _index(netlink: Pyroute2Netlink, name: str) -> int:
    link = netlink.get(name)
    assert link is not None, name
    return link.index


def _outcome(operation: Callable[[], object]) -> str:
    """What an operation returned, or the errno name / exception class it raised."""
    try:
        result = operation()
    except NetlinkError as exc:
        return errno.errorcode.get(exc.code, str(exc.code))
    except HostError as exc:
        return type(exc).__name__
    return "None" if result is None else "False" if result is False else "done"


def test_one_host_cycling_vifs_leaves_no_reply_unread(env: Env) -> None:
    """Hybrid (qbr + veth pair + port), manual (multi-queue TAP + port) and ethernet (TAP) VIFs,
    each plugged twice (the second finds it done: the read-only paths) and unplugged twice (the
    second finds nothing), cycle after cycle through one Host: its socket holds no unread reply
    after FIRST cycles, nor after TOTAL."""
    driver = GenericVIFDriver()
    vifs = [env.vif("ovs-hybrid.json"), env.vif("ovs-manual.json"), env.vif("ethernet.json")]
    host: Host = env.host("native")
    counts: dict[int, Unread] = {}
    for cycle in range(1, TOTAL + 1):
        for vif in vifs:
            assert not driver.plug(vif, host).already_done, (cycle, vif.vif_type)
            assert driver.plug(vif, host).already_done, (cycle, vif.vif_type)
            assert not driver.unplug(vif, host).already_done, (cycle, vif.vif_type)
            assert driver.unplug(vif, host).already_done, (cycle, vif.vif_type)
        if cycle in (FIRST, TOTAL):
            counts[cycle] = unread_replies(host.netlink)
    none = Unread(queued=0, in_kernel=False)
    assert counts == {FIRST: none, TOTAL: none}, \
        f"unread netlink replies after N cycles (N: count): {counts}"
