"""In-memory fakes of the host edge, for unit tests: no root, no kernel, no OVS.

    from vifplug.host import Host
    from vifplug.host.fake import FakeNetlink, FakeOvsdb

    netlink, ovsdb = FakeNetlink(), FakeOvsdb(bridges=["br-int"])
    host = Host.using(netlink, ovsdb)
    before = netlink.state(), ovsdb.state()
    GenericVIFDriver(firewall=True).plug(vif, host)
    netlink.state()["qbr0f6d3c1e-5b"]  # {'kind': 'bridge', 'mtu': 1450, 'up': True, ...}

:class:`FakeNetlink` models the kernel's net devices as far as plans can tell: kinds (bridge,
veth, vlan, tun, and plain devices that cannot be deleted, like a NIC or ``lo``), MTU, up, master,
veth peers and VLAN parents, link groups, bridge timers, TAP flags and the per-device IPv6
switch. It refuses as the kernel does — ``EEXIST`` for a name taken, ``ENODEV`` for a name or
group with no device, ``EINVAL``/``EOPNOTSUPP``/``ELOOP`` for impossible masters and MTUs, a TAP
opened with other flags — with pyroute2's ``NetlinkError``; deleting a veth takes its peer,
deleting a bridge frees its ports, deleting a parent takes its VLANs, and deleting a link group
deletes every device in it at once.

:class:`FakeOvsdb` keeps Bridge, Port and Interface rows (the columns plans touch) and commits
all or nothing, through either backend's real code: ``backend="native"`` runs the steps'
:meth:`~vifplug.plan.Step.ovsdb_native` against a small look-alike of vifplug's ovsdbapp API
(``add_br``, ``add_port``, ``db_set``, ``refuse_port_elsewhere``, ``remove_port``, a
transaction), ``backend="vsctl"`` interprets the ``ovs-vsctl`` arguments
:class:`~vifplug.host.ovsdb.VsctlOvsdb` would run.

Both log every call (``calls``; ``listen`` to follow them as they happen) and fail on demand:
:meth:`FakeNetlink.fail` / :meth:`FakeOvsdb.fail` make the next call of an operation (for a
device, or any; or the n-th such call) raise before it does anything; ``intercept`` runs any
action there instead (a concurrent creator, say).
Importing this module imports neither pyroute2 nor ovsdbapp (pyroute2's ``NetlinkError`` is
imported when the fake first refuses something).
"""

from __future__ import annotations

import copy
import errno
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from vifplug.host.errors import HostError
from vifplug.host.netlink import Link
from vifplug.host.ovsdb import (
    _COLUMNS,
    Backend,
    InterfaceState,
    Snapshot,
    SwitchState,
    VsctlOvsdb,
    check_ovsdb_backend,
    native_commit,
    snapshot_names,
)
from vifplug.plan import Step

__all__ = ["FakeDevice", "FakeNetlink", "FakeOvsdb"]

Action = Callable[[], None]

#: Netlink operations that only read.
NETLINK_READS = frozenset({"get", "name_of", "ipv6_disabled", "links"})


def netlink_error(code: int) -> Exception:
    """pyroute2's ``NetlinkError`` for errno ``code``, as the kernel's answer carries it."""
    from pyroute2 import NetlinkError

    error: Exception = NetlinkError(code, os.strerror(code))
    return error


@dataclass
class _Interception:
    operation: str
    device: str | None
    action: Action
    skip: int


@dataclass
class _Interceptions:
    """One-shot actions run before a matching call (``device`` ``None``: any), after ``skip``
    matching calls went by; and a listener told of every call."""

    pending: list[_Interception] = field(default_factory=list)
    listener: Callable[[str, str], None] | None = None

    def add(self, operation: str, device: str | None, action: Action, skip: int) -> None:
        self.pending.append(_Interception(operation, device, action, skip))

    def run(self, operation: str, device: str) -> None:
        if self.listener is not None:
            self.listener(operation, device)
        for index, found in enumerate(self.pending):
            if found.operation == operation and found.device in (None, device):
                if found.skip:
                    found.skip -= 1
                    return
                del self.pending[index]
                found.action()
                return


def _raiser(error: BaseException) -> Action:
    def action() -> None:
        raise error
    return action


# --- netlink ----------------------------------------------------------------------------------


@dataclass
class FakeDevice:
    """One net device as :class:`FakeNetlink` holds it."""

    index: int
    name: str
    #: ``bridge``, ``veth``, ``vlan``, ``tun``; ``None``: a plain device (a NIC, ``lo``).
    kind: str | None
    mtu: int = 1500
    up: bool = False
    master: int | None = None
    #: The veth peer's index, or the VLAN device's parent.
    link: int | None = None
    group: int = 0
    forward_delay: int | None = None
    ageing_time: int | None = None
    #: TAPs: (no packet info, vnet_hdr, multi-queue).
    tun_flags: tuple[bool, bool, bool] | None = None
    vlan: int | None = None
    address: str | None = None
    #: Bonds: the bonding mode.
    bond_mode: str | None = None
    ipv6_disabled: bool = False
    #: As a Linux bridge port: its state (3 forwarding, as the kernel's with STP off).
    port_state: int = 3
    #: As a Linux bridge port: isolated (IFLA_BRPORT_ISOLATED).
    port_isolated: bool = False

    def view(self) -> Link:
        return Link(index=self.index, name=self.name, kind=self.kind, mtu=self.mtu, up=self.up,
                    master=self.master, link=self.link, group=self.group,
                    forward_delay=self.forward_delay, ageing_time=self.ageing_time,
                    tun_flags=self.tun_flags, address=self.address,
                    port_isolated=self.port_isolated if self.master is not None else None)


class FakeNetlink:
    """:class:`~vifplug.host.netlink.Netlink` in memory (see the module's docstring)."""

    #: A new bridge's timers, as the kernel sets them (centiseconds): 15 s and 300 s.
    BRIDGE_FORWARD_DELAY = 1500
    BRIDGE_AGEING_TIME = 30000
    MIN_MTU, MAX_MTU = 68, 65535

    def __init__(self, *, ipv6: bool = True,
                 kinds: Iterable[str] = ("bridge", "veth", "vlan", "tun", "bond")) -> None:
        #: Devices by name.
        self.devices: dict[str, FakeDevice] = {}
        #: Every call made, ``(operation, device)`` (a group as ``group N``).
        self.calls: list[tuple[str, str]] = []
        #: Whether this "kernel" has IPv6 (``ipv6_disabled`` is ``None`` without it).
        self.ipv6 = ipv6
        #: The device kinds this "kernel" can create (the test machines' lacks ``vlan``).
        self.kinds = frozenset(kinds)
        self.closed = False
        self._next_index = 1
        self._interceptions = _Interceptions()
        self.add_device("lo", None, mtu=65536, up=True)

    # --- for tests: setting up, looking, failing ---

    def add_device(self, name: str, kind: str | None, **attributes: Any) -> FakeDevice:
        """A device as a test's set-up makes it (``ip link add`` from a shell: not logged).
        ``master``/``link`` may be given as names."""
        if name in self.devices:
            raise ValueError(f"{name} exists")
        for key in ("master", "link"):
            if isinstance(attributes.get(key), str):
                attributes[key] = self.devices[attributes[key]].index
        if kind == "bridge":
            attributes.setdefault("forward_delay", self.BRIDGE_FORWARD_DELAY)
            attributes.setdefault("ageing_time", self.BRIDGE_AGEING_TIME)
        device = FakeDevice(self._next_index, name, kind, **attributes)
        self._next_index += 1
        self.devices[name] = device
        return device

    def add_veth_pair(self, name: str, peer: str, **attributes: Any) -> None:
        """Both ends, with the same attributes (set-up, not logged)."""
        first = self.add_device(name, "veth", **attributes)
        second = self.add_device(peer, "veth", link=first.index, **attributes)
        first.link = second.index

    def state(self) -> dict[str, dict[str, Any]]:
        """Every device by name and everything about it but its index (a device made again
        gets a new one): masters, peers and parents by name. Equal states: equal hosts."""
        names = {device.index: name for name, device in self.devices.items()}
        found = {}
        for name, device in self.devices.items():
            attributes = asdict(device)
            del attributes["index"]
            attributes["master"] = names.get(device.master) if device.master else None
            attributes["link"] = names.get(device.link) if device.link else None
            found[name] = attributes
        return found

    @property
    def writes(self) -> list[tuple[str, str]]:
        """The calls that asked for a change (an ``update`` of nothing asks for none)."""
        return [call for call in self.calls if call[0] not in NETLINK_READS]

    def fail(self, operation: str, device: str | None = None,
             error: BaseException | None = None, *, skip: int = 0) -> None:
        """The next call of ``operation`` (for ``device``, or any; after ``skip`` such calls)
        raises ``error`` (default: ``OSError(EIO)``) before doing anything."""
        self.intercept(operation, device, _raiser(error or OSError(
            errno.EIO, f"injected in {operation}({device or ''})")), skip=skip)

    def intercept(self, operation: str, device: str | None, action: Action, *,
                  skip: int = 0) -> None:
        """Run ``action`` at the next call of ``operation`` (for ``device``, or any; after
        ``skip`` such calls), before the operation itself (which then runs, unless ``action``
        raised)."""
        self._interceptions.add(operation, device, action, skip)

    def listen(self, listener: Callable[[str, str], None] | None) -> None:
        """Tell ``listener`` of every call, ``(operation, device)``, as it starts."""
        self._interceptions.listener = listener

    # --- the protocol ---

    def _call(self, operation: str, device: str) -> None:
        self.closed = False
        self.calls.append((operation, device))
        self._interceptions.run(operation, device)

    def _named(self, name: str) -> FakeDevice:
        device = self.devices.get(name)
        if device is None:
            raise netlink_error(errno.ENODEV)
        return device

    def _indexed(self, index: int) -> FakeDevice | None:
        return next((device for device in self.devices.values() if device.index == index), None)

    def _new(self, name: str, kind: str) -> FakeDevice:
        if not name or len(name) > 15 or "/" in name or name.strip() != name:
            raise netlink_error(errno.EINVAL)
        if name in self.devices:
            raise netlink_error(errno.EEXIST)
        if kind not in self.kinds:
            raise netlink_error(errno.EOPNOTSUPP)
        return self.add_device(name, kind)

    def get(self, name: str) -> Link | None:
        self._call("get", name)
        device = self.devices.get(name)
        return None if device is None else device.view()

    def name_of(self, index: int) -> str | None:
        self._call("name_of", str(index))
        device = self._indexed(index)
        return None if device is None else device.name

    def port_state(self, name: str) -> int | None:
        self._call("port_state", name)
        device = self.devices.get(name)
        return None if device is None or device.master is None else device.port_state

    def port_isolated(self, name: str) -> bool | None:
        self._call("port_isolated", name)
        device = self.devices.get(name)
        return None if device is None or device.master is None else device.port_isolated

    def events(self) -> None:
        """No events: a fake changes only when the test changes it (a wait reads once)."""
        return

    def add_bridge(self, name: str, *, forward_delay: int | None,
                   ageing_time: int | None) -> None:
        self._call("add_bridge", name)
        device = self._new(name, "bridge")
        if forward_delay is not None:
            device.forward_delay = forward_delay
        if ageing_time is not None:
            device.ageing_time = ageing_time

    def set_bridge(self, name: str, *, forward_delay: int | None,
                   ageing_time: int | None) -> None:
        self._call("set_bridge", name)
        device = self._named(name)
        if device.kind != "bridge":
            raise netlink_error(errno.EOPNOTSUPP)
        if forward_delay is not None:
            device.forward_delay = forward_delay
        if ageing_time is not None:
            device.ageing_time = ageing_time

    def add_veth(self, name: str, peer: str) -> None:
        self._call("add_veth", name)
        if peer in self.devices:
            raise netlink_error(errno.EEXIST)
        first = self._new(name, "veth")
        second = self.add_device(peer, "veth", link=first.index)
        first.link = second.index

    def add_vlan(self, name: str, parent: str, vlan: int) -> None:
        self._call("add_vlan", name)
        lower = self.devices.get(parent)
        if lower is None:  # Pyroute2Netlink looks the parent up first, and says so
            raise HostError(f"VLAN parent {parent} does not exist", device=parent)
        if any(device.kind == "vlan" and device.link == lower.index and device.vlan == vlan
               for device in self.devices.values()):
            raise netlink_error(errno.EEXIST)
        device = self._new(name, "vlan")
        device.link, device.vlan, device.mtu = lower.index, vlan, lower.mtu

    def add_tap(self, name: str, *, multi_queue: bool) -> None:
        self._call("add_tap", name)
        existing = self.devices.get(name)
        if existing is not None:
            # TUNSETIFF on an existing name attaches to that TAP if its multi-queue flag
            # matches (and takes the new flags); anything else is EINVAL.
            if existing.kind != "tun" or existing.tun_flags is None \
                    or existing.tun_flags[2] != multi_queue:
                raise netlink_error(errno.EINVAL)
            existing.tun_flags = (True, True, multi_queue)
            return
        self._new(name, "tun").tun_flags = (True, True, multi_queue)

    def add_bond(self, name: str, mode: str) -> None:
        self._call("add_bond", name)
        self._new(name, "bond").bond_mode = mode

    def links(self) -> list[Link]:
        self._call("links", "")
        return [device.view() for device in self.devices.values()]

    def set_address(self, name: str, address: str) -> None:
        self._call("set_address", name)
        self._named(name).address = address

    def update(self, name: str, *, mtu: int | None = None, up: bool | None = None,
               group: int | None = None, index: int | None = None) -> None:
        if (mtu, up, group) == (None, None, None):
            return  # no request at all
        self._call("update", name)
        if index is not None:
            found = self._indexed(index)
            if found is None:
                raise netlink_error(errno.ENODEV)
            device = found
        else:
            device = self._named(name)
        if mtu is not None and not self.MIN_MTU <= mtu <= self.MAX_MTU:
            raise netlink_error(errno.EINVAL)
        if mtu is not None:
            device.mtu = mtu
        if up is not None:
            device.up = up
        if group is not None:
            device.group = group

    def set_master(self, name: str, master: int | None) -> None:
        self._call("set_master", name)
        device = self._named(name)
        if not master:
            device.master = None
            return
        bridge = self._indexed(master)
        if bridge is None:
            raise netlink_error(errno.EINVAL)
        if bridge.kind not in ("bridge", "bond"):
            raise netlink_error(errno.EOPNOTSUPP)
        if bridge.kind == "bond" and device.up:
            raise netlink_error(errno.EBUSY)  # (older kernels) a bond takes a NIC that is down
        if device.kind == "bridge" or bridge is device:
            raise netlink_error(errno.ELOOP)
        device.master = master

    def delete(self, name: str) -> bool:
        self._call("delete", name)
        device = self.devices.get(name)
        if device is None:
            return False
        if device.kind is None:
            raise netlink_error(errno.EOPNOTSUPP)
        self._unregister(device)
        return True

    def delete_group(self, group: int) -> None:
        self._call("delete_group", f"group {group}")
        members = [device for device in self.devices.values() if device.group == group]
        if not members:
            raise netlink_error(errno.ENODEV)
        if any(device.kind is None for device in members):
            raise netlink_error(errno.EOPNOTSUPP)  # checked for all before deleting any
        for device in members:
            if device.name in self.devices:  # not already gone with a peer
                self._unregister(device)

    def _unregister(self, device: FakeDevice) -> None:
        del self.devices[device.name]
        for other in list(self.devices.values()):
            if other.master == device.index:
                other.master = None
            if other.link == device.index and other.kind in ("veth", "vlan"):
                self._unregister(other)  # the veth's peer; the parent's VLANs

    def ipv6_disabled(self, name: str) -> bool | None:
        self._call("ipv6_disabled", name)
        device = self.devices.get(name)
        return None if device is None or not self.ipv6 else device.ipv6_disabled

    def disable_ipv6(self, name: str, disabled: bool = True) -> None:
        self._call("disable_ipv6", name)
        device = self.devices.get(name)
        if device is not None and self.ipv6:
            device.ipv6_disabled = disabled

    def close(self) -> None:
        self.closed = True


# --- OVSDB ------------------------------------------------------------------------------------

Rows = dict[str, dict[str, dict[str, Any]]]

#: Empty rows: every column the fake keeps (those plans touch, and a Port's interfaces).
_EMPTY: dict[str, dict[str, Any]] = {
    "Bridge": {"datapath_type": "", "ports": []},
    "Port": {"interfaces": [], "tag": [], "trunks": []},
    "Interface": {"type": "", "external_ids": {}, "options": {}, "mtu_request": []},
}
#: Column kinds, for ovs-vsctl's ``set``: optional (``[]`` or one value), sets, maps.
_OPTIONAL = frozenset({"tag", "mtu_request"})
_SET_COLUMNS = frozenset({"trunks", "ports", "interfaces"})


class FakeOvsdb:
    """:class:`~vifplug.host.ovsdb.Ovsdb` in memory (see the module's docstring). ``bridges``
    exist from the start, with ``datapath_type``."""

    def __init__(self, *, backend: Backend = "native", bridges: Iterable[str] = ("br-int",),
                 datapath_type: str = "netdev") -> None:
        self.backend: Backend = check_ovsdb_backend(backend)
        #: Rows by table and name; columns as a Snapshot shows them.
        self.rows: Rows = {table: {} for table in _EMPTY}
        #: Every call made, ``(operation, name)``: the protocol's, and the commands run inside
        #: a transaction (``add_port`` …, or ovs-vsctl's ``add-port`` …).
        self.calls: list[tuple[str, str]] = []
        #: Transactions sent (a failed one too).
        self.transactions = 0
        self.closed = False
        self._interceptions = _Interceptions()
        for bridge in bridges:
            _add_bridge(self.rows, bridge, datapath_type)
        # --- a pretend ovs-vswitchd, for readiness ---
        #: It applies every commit at once (``cur_cfg`` follows, ports get an OpenFlow port);
        #: stopped, it applies nothing until :meth:`apply_config`.
        self.vswitchd_running = True
        self.cur_cfg = self.next_cfg = 0
        #: This host is an OVN chassis: ports are ready once in :attr:`ovn_installed`.
        self.ovn = False
        self.ovn_installed: set[str] = set()
        #: OpenFlow ports by interface name; ``errors``: interfaces vswitchd cannot create.
        self.ofports: dict[str, int] = {}
        self.errors: dict[str, str] = {}

    # --- for tests ---

    def add_bridge(self, name: str, datapath_type: str = "netdev") -> None:
        """A bridge (and its internal port) as a test's set-up makes it (not logged)."""
        _add_bridge(self.rows, name, datapath_type)

    def add_port(self, bridge: str, port: str, **interface: Any) -> None:
        """A port and its interface on ``bridge``, with these Interface columns (set-up)."""
        _add_port(self.rows, bridge, port)
        self.rows["Interface"][port].update(interface)

    def state(self) -> Rows:
        """A deep copy of every row (sets sorted): equal states, equal databases."""
        rows = copy.deepcopy(self.rows)
        for table in rows.values():
            for row in table.values():
                for column in _SET_COLUMNS & set(row):
                    row[column] = sorted(row[column])
        return rows

    def fail(self, operation: str, name: str | None = None,
             error: BaseException | None = None, *, skip: int = 0) -> None:
        """The next call of ``operation`` (for ``name``, or any; after ``skip`` such calls)
        raises ``error`` (default: a ``RuntimeError``) before doing anything; inside a
        transaction, the transaction fails (and changes nothing)."""
        self.intercept(operation, name, _raiser(error or RuntimeError(
            f"injected in {operation}({name or ''})")), skip=skip)

    def intercept(self, operation: str, name: str | None, action: Action, *,
                  skip: int = 0) -> None:
        """Run ``action`` at the next call of ``operation`` (for ``name``, or any; after
        ``skip`` such calls), before the operation itself."""
        self._interceptions.add(operation, name, action, skip)

    def listen(self, listener: Callable[[str, str], None] | None) -> None:
        """Tell ``listener`` of every call, ``(operation, name)``, as it starts."""
        self._interceptions.listener = listener

    def _call(self, operation: str, name: str) -> None:
        self.calls.append((operation, name))
        self._interceptions.run(operation, name)

    # --- the protocol ---

    def bridge_exists(self, bridge: str) -> bool:
        self._call("bridge_exists", bridge)
        return bridge in self.rows["Bridge"]

    def snapshot(self, steps: Sequence[Step]) -> Snapshot:
        self._call("snapshot", ", ".join(step.device for step in steps))
        snap = Snapshot()
        for table, names in snapshot_names(steps).items():
            for name in names:
                row = self.rows[table].get(name)
                if row is not None:
                    snap.add(table, copy.deepcopy({column: row[column]
                                                   for column in _COLUMNS[table]}))
        return snap

    def commit(self, steps: Sequence[Step]) -> int | None:
        self._call("commit", ", ".join(step.device for step in steps))
        if not steps:
            return None
        if self.backend == "native":  # like NativeOvsdb: bumps next_cfg, does not wait
            native_commit(_Api(self), steps)
            self.next_cfg += 1
            if self.vswitchd_running:
                self.apply_config()
            return self.next_cfg
        try:
            self.transact([_vsctl(self, command)
                           for command in _split(VsctlOvsdb.commands(steps))])
        except Exception as exc:  # ovs-vsctl exits 1 and says why on stderr
            raise HostError(f"OVSDB transaction failed: ovs-vsctl: ovs-vsctl: {exc}") from exc
        self.next_cfg += 1  # ovs-vsctl bumps it too, and waits (here: vswitchd is immediate)
        if self.vswitchd_running:
            self.apply_config()
        return None

    def apply_config(self) -> None:
        """What ovs-vswitchd does with the committed configuration: ``cur_cfg`` catches up,
        each new interface gets an OpenFlow port (-1 when it is in :attr:`errors`)."""
        self.cur_cfg = self.next_cfg
        for name in self.rows["Interface"]:
            if name not in self.ofports:
                self.ofports[name] = -1 if name in self.errors else len(self.ofports) + 1
        for name in set(self.ofports) - set(self.rows["Interface"]):
            del self.ofports[name]

    # --- readiness (OvsdbReader) ---

    def switch_state(self) -> SwitchState:
        self._call("switch_state", "")
        return SwitchState(self.cur_cfg, self.next_cfg, self.ovn)

    def interface_states(self, names: Sequence[str]) -> dict[str, InterfaceState | None]:
        self._call("interface_states", ", ".join(names))
        return {name: None if name not in self.rows["Interface"] else InterfaceState(
                    self.ofports.get(name), self.errors.get(name), name in self.ovn_installed,
                    self.rows["Interface"][name].get("external_ids", {}).get("iface-id"))
                for name in names}

    def watch(self) -> None:
        """No notifications: the fake changes only when the test changes it."""
        return

    def close(self) -> None:
        self.closed = True

    def transact(self, commands: Sequence[Callable[[Rows], None]]) -> None:
        """Run ``commands`` on a copy of the rows; keep the copy only if all succeed."""
        self.transactions += 1
        working = copy.deepcopy(self.rows)
        for command in commands:
            command(working)
        self.rows = working


def _add_bridge(rows: Rows, name: str, datapath_type: str) -> None:
    rows["Bridge"][name] = {"name": name, **copy.deepcopy(_EMPTY["Bridge"]),
                            "datapath_type": datapath_type}
    _add_port(rows, name, name)
    rows["Interface"][name]["type"] = "internal"


def _add_port(rows: Rows, bridge: str, port: str) -> None:
    rows["Port"][port] = {"name": port, **copy.deepcopy(_EMPTY["Port"]), "interfaces": [port]}
    rows["Interface"][port] = {"name": port, **copy.deepcopy(_EMPTY["Interface"])}
    rows["Bridge"][bridge]["ports"].append(port)


def _bridge_of(rows: Rows, port: str) -> str | None:
    return next((name for name, bridge in rows["Bridge"].items() if port in bridge["ports"]),
                None)


def _del_port(rows: Rows, port: str) -> None:
    bridge = _bridge_of(rows, port)
    if bridge is not None:
        rows["Bridge"][bridge]["ports"].remove(port)
    for interface in rows["Port"].pop(port)["interfaces"]:
        rows["Interface"].pop(interface, None)  # ovsdb-server drops unreferenced rows


# --- the native backend's view: an ovsdbapp look-alike ------------------------------------------


class _Api:
    """What steps' ``ovsdb_native`` use of vifplug's ovsdbapp API: commands that act on the rows
    in a transaction."""

    def __init__(self, db: FakeOvsdb) -> None:
        self._db = db

    @contextmanager
    def transaction(self, check_error: bool = False, **kwargs: Any) -> Iterator[_Txn]:
        txn = _Txn()
        yield txn  # an exception in the block: nothing is sent (as ovsdbapp's)
        self._db.transact(txn.commands)

    def _command(self, operation: str, name: str,
                 run: Callable[[Rows], None]) -> Callable[[Rows], None]:
        def command(rows: Rows) -> None:
            self._db._call(operation, name)
            run(rows)
        return command

    def add_br(self, name: str, may_exist: bool = True,
               datapath_type: str | None = None) -> Callable[[Rows], None]:
        def run(rows: Rows) -> None:
            if name in rows["Bridge"]:
                if not may_exist:
                    raise RuntimeError(f"Bridge {name} already exists")
            else:
                _add_bridge(rows, name, "")
            if datapath_type:
                rows["Bridge"][name]["datapath_type"] = datapath_type
        return self._command("add_br", name, run)

    def add_port(self, bridge: str, port: str,
                 may_exist: bool = True) -> Callable[[Rows], None]:
        def run(rows: Rows) -> None:
            if bridge not in rows["Bridge"]:
                raise RuntimeError(f"Cannot find Bridge with name={bridge}")
            if port in rows["Port"]:
                if may_exist:
                    return  # on whichever bridge: ovsdbapp does not look
                raise RuntimeError(f"Port {port} already exists")
            _add_port(rows, bridge, port)
        return self._command("add_port", port, run)

    def db_set(self, table: str, record: str, *col_values: tuple[str, Any],
               if_exists: bool = True) -> Callable[[Rows], None]:
        def run(rows: Rows) -> None:
            row = rows[table].get(record)
            if row is None:
                if if_exists:
                    return
                raise RuntimeError(f"Cannot find {table} with name={record}")
            for column, value in col_values:
                if isinstance(value, dict):
                    row[column] = {**row[column], **value}  # maps merge, as ovsdbapp's
                elif column in _OPTIONAL:
                    row[column] = value if isinstance(value, list) else [value]
                else:
                    row[column] = copy.deepcopy(value)
        return self._command("db_set", record, run)

    def refuse_port_elsewhere(self, bridge: str, port: str) -> Callable[[Rows], None]:
        def run(rows: Rows) -> None:
            holder = _bridge_of(rows, port)
            if holder is not None and holder != bridge:
                raise HostError(f"OVS port {port} is already on bridge {holder}, not {bridge}: "
                                "delete it there first", device=port)
        return self._command("refuse_port_elsewhere", port, run)

    def remove_port(self, port: str) -> Callable[[Rows], None]:
        def run(rows: Rows) -> None:
            if port in rows["Port"]:
                _del_port(rows, port)
        return self._command("del_port", port, run)


@dataclass
class _Txn:
    commands: list[Callable[[Rows], None]] = field(default_factory=list)

    def add(self, command: Callable[[Rows], None]) -> None:
        self.commands.append(command)


# --- the vsctl backend's view: ovs-vsctl's commands, interpreted --------------------------------


class _VsctlError(Exception):
    """What ovs-vsctl would say on stderr (after ``ovs-vsctl: ``)."""


def _split(args: Sequence[str]) -> list[list[str]]:
    """``-- a b -- c d`` → ``[[a, b], [c, d]]``."""
    commands: list[list[str]] = []
    for arg in args:
        if arg == "--":
            commands.append([])
        else:
            commands[-1].append(arg)
    return commands


def _vsctl(db: FakeOvsdb, command: list[str]) -> Callable[[Rows], None]:
    options = [arg for arg in command if arg.startswith("--")]
    verb, *args = [arg for arg in command if not arg.startswith("--")]

    def run(rows: Rows) -> None:
        db._call(verb, args[1] if verb == "set" else args[-1])
        handler = _VSCTL.get(verb)
        if handler is None:
            raise _VsctlError(f"unknown command '{verb}'")
        handler(rows, args, "--may-exist" in options or "--if-exists" in options)
    return run


def _vsctl_add_br(rows: Rows, args: list[str], may_exist: bool) -> None:
    (name,) = args
    if name in rows["Bridge"]:
        if not may_exist:
            raise _VsctlError(f"cannot create a bridge named {name} because a bridge named "
                              f"{name} already exists")
        return
    _add_bridge(rows, name, "")


def _vsctl_add_port(rows: Rows, args: list[str], may_exist: bool) -> None:
    bridge, port = args
    if bridge not in rows["Bridge"]:
        raise _VsctlError(f"no bridge named {bridge}")
    if port in rows["Port"]:
        holder = _bridge_of(rows, port)
        if may_exist and holder == bridge:
            return
        if may_exist:
            raise _VsctlError(f'"--may-exist add-port {bridge} {port}" but {port} is actually '
                              f"attached to bridge {holder}")
        raise _VsctlError(f"cannot create a port named {port} because a port named {port} "
                          f"already exists on bridge {holder}")
    _add_port(rows, bridge, port)


def _vsctl_set(rows: Rows, args: list[str], if_exists: bool) -> None:
    table, record, *assignments = args
    row = rows[table].get(record)
    if row is None:
        raise _VsctlError(f'no row "{record}" in table {table}')
    for assignment in assignments:
        column, _, text = assignment.partition("=")
        column, _, key = column.partition(":")
        value = _parse(text)
        if key:
            row[column] = {**row[column], key: value}
        elif column in _OPTIONAL:
            row[column] = value if isinstance(value, list) else [value]
        else:
            row[column] = value


def _vsctl_del_port(rows: Rows, args: list[str], if_exists: bool) -> None:
    (port,) = args
    if port not in rows["Port"]:
        if if_exists:
            return
        raise _VsctlError(f"no port named {port}")
    _del_port(rows, port)


_VSCTL: dict[str, Callable[[Rows, list[str], bool], None]] = {
    "add-br": _vsctl_add_br,
    "add-port": _vsctl_add_port,
    "set": _vsctl_set,
    "del-port": _vsctl_del_port,
}


def _parse(text: str) -> Any:
    """An ovs-vsctl value: ``"json string"``, ``[a,b]``, an integer, or a bare string."""
    if text.startswith("["):
        inner = text[1:-1]
        return [_parse(item) for item in inner.split(",")] if inner else []
    if text.startswith('"'):
        return json.loads(text)
    try:
        return int(text)
    except ValueError:
        return text
