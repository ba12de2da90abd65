"""Watch the host until plugged VIFs are ready (:mod:`vifplug.ready` says what that means).

Nothing here polls: each wait subscribes to the OVSDB replica's changes (a pipe of its own,
:meth:`OvsdbReader.watch`: waits in many threads never steal each other's wake-ups) and to netlink
link events, which wake it when a device appears, goes up or joins a bridge; each wake-up re-reads
only what is not ready yet. Whatever the write backend,
readiness reads OVSDB through the native IDL (one connection, kept by the :class:`Host`).
"""

from __future__ import annotations

import errno
import select
import time
from collections.abc import Sequence
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

from vifplug.host.netlink import PORT_STATES
from vifplug.ready import Condition, LinkReady, OvsPortReady, VifReadiness

if TYPE_CHECKING:
    from vifplug.host import Host
    from vifplug.host.ovsdb import OvsdbReader

__all__ = ["check", "wait_applied", "wait_ready"]

#: What one VIF waits for: its id and its conditions.
Wanted = tuple[str, tuple[Condition, ...]]


def check(host: Host, wanted: Sequence[Wanted], *, cfg: int | None = None,
          diagnose: bool = False) -> list[VifReadiness]:
    """Where each VIF stands now. ``cfg``: the configuration ovs-vswitchd must have applied
    (default: the newest committed, ``next_cfg``) for a VIF with an OVS port. ``diagnose``:
    for a port an OVN chassis has not installed, find out why (ovn-controller, the southbound
    database: a few connections, so only for a final report, never per wake-up)."""
    ovs_ports = sorted({c.port for _, conditions in wanted for c in conditions
                        if isinstance(c, OvsPortReady)})
    reader = host.ovsdb_reader if ovs_ports else None
    switch = reader.switch_state() if reader is not None else None
    interfaces = reader.interface_states(ovs_ports) if reader is not None else {}
    results = []
    for vif_id, conditions in wanted:
        reasons: list[str] = []
        details: dict[str, dict[str, Any]] = {}
        for condition in conditions:
            if isinstance(condition, OvsPortReady):
                reasons += _ovs_port(condition.port, interfaces.get(condition.port), switch,
                                     details, host if diagnose else None)
            else:
                reasons += _link(host, condition, details)
        if any(isinstance(c, OvsPortReady) for c in conditions) and switch is not None:
            target = switch.next_cfg if cfg is None else cfg
            if switch.cur_cfg < target:
                reasons.append(f"ovs-vswitchd has not applied configuration {target} yet (it "
                               f"is at {switch.cur_cfg}): is ovs-vswitchd running?")
        results.append(VifReadiness(vif_id, conditions, tuple(reasons), details))
    return results


def wait_ready(host: Host, wanted: Sequence[Wanted], *, timeout: float,
               cfg: int | None = None) -> list[VifReadiness]:
    """Wait until every VIF is ready or ``timeout`` seconds pass; where each stands then."""
    deadline = time.monotonic() + timeout
    pending = list(wanted)
    done: dict[str, VifReadiness] = {}
    target = cfg
    needs_ovs = any(isinstance(c, OvsPortReady) for _, cs in wanted for c in cs)
    reader: OvsdbReader | None = host.ovsdb_reader if needs_ovs else None
    if reader is not None and target is None:
        switch = reader.switch_state()  # what was committed before the wait began
        target = switch.next_cfg if switch is not None else None
    with ExitStack() as stack:
        # Subscribed before the first look, so no change between a look and the wait is missed.
        watch = reader.watch() if reader is not None else None
        if watch is not None:
            stack.enter_context(watch)
        links = host.netlink.events() if any(isinstance(c, LinkReady)
                                              for _, cs in wanted for c in cs) else None
        if links is not None:
            stack.callback(links.close)
        while True:
            if watch is not None:
                watch.drain()  # what happened before this look is seen by it
            if links is not None:
                _drain(links)
            for state in check(host, pending, cfg=target):
                done[state.vif_id] = state
            pending = [item for item in pending if not done[item[0]].ready]
            remaining = deadline - time.monotonic()
            if not pending:
                break
            if remaining <= 0:
                # the final report: say precisely why each OVN port is not installed
                for state in check(host, pending, cfg=target, diagnose=True):
                    done[state.vif_id] = state
                break
            fds = [source.fileno() for source in (watch, links) if source is not None]
            if not fds:
                break  # nothing can change what was read
            select.select(fds, [], [], remaining)
    return [done[vif_id] for vif_id, _ in wanted]


def wait_applied(host: Host, cfg: int, *, timeout: float) -> int | None:
    """Wait until ovs-vswitchd has applied configuration ``cfg`` (``cur_cfg`` >= ``cfg``) or
    ``timeout`` seconds pass; the ``cur_cfg`` last read (``None``: no Open_vSwitch row)."""
    reader = host.ovsdb_reader
    deadline = time.monotonic() + timeout
    with ExitStack() as stack:
        watch = reader.watch()
        if watch is not None:
            stack.enter_context(watch)
        while True:
            if watch is not None:
                watch.drain()
            switch = reader.switch_state()
            if switch is None or switch.cur_cfg >= cfg:
                return None if switch is None else switch.cur_cfg
            remaining = deadline - time.monotonic()
            if remaining <= 0 or watch is None:
                return switch.cur_cfg
            select.select([watch.fileno()], [], [], remaining)


def _drain(sock: Any) -> None:
    """Read what woke the wait. Under hundreds of link changes the kernel drops events the
    socket had no room for (ENOBUFS): that too only means "something changed", and every wake-up
    re-reads the state anyway."""
    try:
        while sock.recv(65536):
            pass
    except BlockingIOError:
        pass
    except OSError as exc:
        if exc.errno != errno.ENOBUFS:
            raise


def _ovs_port(port: str, iface: Any, switch: Any, details: dict[str, dict[str, Any]],
              diagnosing: Host | None = None) -> list[str]:
    entry = details.setdefault(port, {})
    if iface is None:
        entry["ovs"] = None
        return [f"OVS port {port} does not exist"]
    entry["ovs"] = {"ofport": iface.ofport, "error": iface.error,
                    "ovn_installed": iface.ovn_installed, "iface_id": iface.iface_id}
    if iface.error:
        return [f"OVS port {port}: ovs-vswitchd cannot use it (ofport {iface.ofport}): "
                f"{iface.error}"]
    if iface.ofport is None or iface.ofport < 1:
        return [f"OVS port {port} has no OpenFlow port yet (ofport "
                f"{'unset' if iface.ofport is None else iface.ofport})"]
    if switch is not None and switch.ovn and not iface.ovn_installed:
        if diagnosing is not None and switch.chassis is not None:
            from vifplug.host.ovn import diagnose, ovn_rundirs

            return [diagnose(port, iface.iface_id, switch.chassis, netns=diagnosing.netns,
                             rundirs=ovn_rundirs(diagnosing.ovsdb_url))]
        return [f"OVS port {port}: ovn-controller has not installed its flows "
                "(no external_ids:ovn-installed)"]
    return []


def _link(host: Host, condition: LinkReady, details: dict[str, dict[str, Any]]) -> list[str]:
    netlink = host.netlink
    link = netlink.get(condition.name)
    device = details.setdefault(condition.name, {})
    if link is None:
        device["link"] = None
        return [f"{condition.name} does not exist"]
    entry: dict[str, Any] = {"up": link.up}
    device["link"] = entry
    if not link.up:
        return [f"{condition.name} is down"]
    if condition.bridge is None:
        return []
    master = netlink.name_of(link.master) if link.master is not None else None
    entry["master"] = master
    if master != condition.bridge:
        return [f"{condition.name} is not a port of {condition.bridge}"
                + (f" (it is on {master})" if master else "")]
    state = netlink.port_state(condition.name)
    entry["port_state"] = PORT_STATES.get(state, state) if state is not None else None
    if state != 3:
        return [f"{condition.name} is not forwarding on {condition.bridge} (state "
                f"{entry['port_state']})"]
    if condition.isolated:
        entry["isolated"] = netlink.port_isolated(condition.name)
        if not entry["isolated"]:
            return [f"{condition.name} is not an isolated port of {condition.bridge} (libvirt "
                    "isolates it from <port isolated='yes'/> when it starts the guest)"]
    return []
