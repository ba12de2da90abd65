"""``vifplug host apply``: the host's bridges, bonds, VLAN devices and uplinks as a plan.

Pure: :func:`plan_host` takes the map, what the host has now (:class:`HostState`, read by
:mod:`vifplug.host.network`) and what vifplug owns there (:class:`Owned`), and returns the
steps that converge the host to the map (:class:`HostPlan`), per network — empty when the host
already is as the map says. The steps are :mod:`vifplug.plan` steps, applied by the same engine
as a plug (:func:`vifplug.host.apply.apply_plug`: net devices, then one OVSDB transaction; every
change undone if any step fails).

What vifplug manages, and nothing else:

- ``legacy`` networks: the Linux bridge (made by vifplug, or an uplink-less one that exists is
  used as it is), the kernel bond and the VLAN device of its uplink, the uplink (or VLAN device)
  as the bridge's port, the MTUs the map gives, and the uplink NIC up;
- ``ovs`` networks: one OVS bridge per uplink (:func:`vifplug.netlayout.ovs_bridges`) with the
  uplink's port — a NIC, or an OVS bond of several NICs — trunking the networks' tags (the
  untagged network on the native VLAN), and the MTUs; uplink-less bridges are made when missing
  (and then owned), used as they are when they exist;
- ``ovn`` and ``direct`` networks: nothing (OVN wires its own bridge; macvtap needs none).

Ownership: OVS Bridge and Port rows vifplug makes carry ``external_ids:vifplug-owner=host``
(:data:`OWNER_KEY`, :data:`OWNER`); Linux devices vifplug makes, and the ports it attached to
its bridges, are in a record file kept by :mod:`vifplug.host.network` (:class:`Owned`). A
network removed from the map loses only what vifplug owns; a device in the way that vifplug
does not own is an error (:class:`HostMapError`, exit 2) and nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from vifplug.errors import VifError
from vifplug.names import check_device_name
from vifplug.netlayout import (
    legacy_bridges,
    legacy_device_problems,
    one_switch_type_problem,
    ovs_bridges,
)
from vifplug.netmap import LEGACY_BOND_MODES as BOND_MODES
from vifplug.netmap import Bond, NetworkMap, Nic, Uplink
from vifplug.plan import (
    DeleteOvsPort,
    EnsureLinuxBridge,
    EnsureMaster,
    EnsureVlanLink,
    LinkStep,
    OvsdbStep,
    Step,
    Table,
    _host_error,
    _vsctl_value,
)

if TYPE_CHECKING:
    from vifplug.host.apply import LinkChanges
    from vifplug.host.netlink import Netlink
    from vifplug.host.ovsdb import Snapshot

__all__ = [
    "OWNER",
    "OWNER_KEY",
    "DeleteOwnedLink",
    "DeleteOwnedOvsBridge",
    "EnsureBond",
    "EnsureNicUp",
    "EnsureOvsUplink",
    "EnsureOwnedOvsBridge",
    "HostMapError",
    "HostPlan",
    "HostState",
    "LinkState",
    "OvsBridgeState",
    "OvsPortState",
    "Owned",
    "OwnedDevice",
    "ReleasePort",
    "plan_host",
]

#: The ``external_ids`` key (and value) on the OVS Bridge and Port rows ``host apply`` made.
OWNER_KEY = "vifplug-owner"
OWNER = "host"


class HostMapError(VifError):
    """The map cannot be applied to this host as it is (a device in the way that is not
    vifplug's, a NIC missing, a mixed map): exit 2, nothing changed. One line per problem."""


# --- what the host has -----------------------------------------------------------------------


@dataclass(frozen=True)
class LinkState:
    """A net device as planning needs it."""

    name: str
    kind: str | None
    mtu: int
    up: bool
    #: Its master's name (a bridge or a bond), or None.
    master: str | None = None
    #: A VLAN device's parent's name.
    parent: str | None = None


@dataclass(frozen=True)
class OvsBridgeState:
    name: str
    owned: bool
    datapath_type: str = ""
    ports: tuple[str, ...] = ()
    #: ``mtu_request`` of the bridge's own (internal) interface.
    mtu_request: int | None = None


@dataclass(frozen=True)
class OvsPortState:
    name: str
    bridge: str | None
    owned: bool
    interfaces: tuple[str, ...] = ()
    tag: int | None = None
    trunks: tuple[int, ...] = ()
    vlan_mode: str | None = None
    bond_mode: str | None = None
    lacp: str | None = None


@dataclass(frozen=True)
class HostState:
    """What the host has now: its net devices and, when OVSDB is reachable, its OVS rows."""

    links: Mapping[str, LinkState] = field(default_factory=dict)
    #: OVS bridges by name; None: no OVSDB here (nothing of OVS is read or changed).
    bridges: Mapping[str, OvsBridgeState] | None = None
    ports: Mapping[str, OvsPortState] = field(default_factory=dict)
    #: Interface ``mtu_request`` by interface name.
    mtu_requests: Mapping[str, int | None] = field(default_factory=dict)


@dataclass(frozen=True)
class OwnedDevice:
    """A Linux device ``host apply`` made, as its record keeps it (enough to make it again)."""

    name: str
    #: ``bridge``, ``vlan`` or ``bond``.
    kind: str
    network: str
    parent: str | None = None
    vlan: int | None = None
    mode: str | None = None
    nics: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "network": self.network}
        if self.parent is not None:
            data.update(parent=self.parent, vlan=self.vlan)
        if self.mode is not None:
            data.update(mode=self.mode, nics=list(self.nics))
        return data

    @classmethod
    def from_json(cls, name: str, data: Mapping[str, Any]) -> OwnedDevice:
        """Checked as input: a record names devices vifplug may delete (ValueError naming the
        key when something is off)."""
        _device(name, name)
        kind = data.get("kind")
        if kind not in ("bridge", "vlan", "bond"):
            raise ValueError(f"{name}.kind: expected bridge, vlan or bond (got {kind!r})")
        parent, vlan, mode = data.get("parent"), data.get("vlan"), data.get("mode")
        if kind == "vlan" and (not isinstance(vlan, int) or not 1 <= vlan <= 4094
                               or not isinstance(parent, str)):
            raise ValueError(f"{name}: a vlan device needs parent and vlan 1..4094")
        if parent is not None:
            _device(parent, f"{name}.parent")
        if kind == "bond" and mode not in BOND_MODES:
            raise ValueError(f"{name}.mode: expected one of {', '.join(BOND_MODES)} "
                             f"(got {mode!r})")
        nics = data.get("nics", [])
        if not isinstance(nics, list):
            raise ValueError(f"{name}.nics: expected a list of device names")
        return cls(name, kind, str(data.get("network", "")), parent, vlan, mode,
                   tuple(_device(nic, f"{name}.nics") for nic in nics))


@dataclass(frozen=True)
class Owned:
    """The Linux side of what vifplug owns: devices it made, ports it attached (port → the
    bridge it put it on)."""

    devices: Mapping[str, OwnedDevice] = field(default_factory=dict)
    ports: Mapping[str, str] = field(default_factory=dict)

    def union(self, other: Owned) -> Owned:
        return Owned({**self.devices, **other.devices}, {**self.ports, **other.ports})

    def to_json(self) -> dict[str, Any]:
        return {"devices": {name: device.to_json() for name, device in
                            sorted(self.devices.items())},
                "ports": dict(sorted(self.ports.items()))}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Owned:
        devices = {name: OwnedDevice.from_json(name, value)
                   for name, value in dict(data.get("devices", {})).items()}
        ports = {_device(port, f"ports.{port}"): _device(master, f"ports.{port}")
                 for port, master in dict(data.get("ports", {})).items()}
        return cls(devices, ports)


def _device(name: object, where: str) -> str:
    if not isinstance(name, str):
        raise ValueError(f"{where}: expected a device name (got {name!r})")
    try:
        return check_device_name(name)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc} (got {name!r})") from None


# --- the plan --------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostPlan:
    """The steps that converge the host to the map, and what vifplug owns after them."""

    path: str
    #: (networks the step is for, the step), in the order they apply.
    entries: tuple[tuple[tuple[str, ...], Step], ...]
    owned_before: Owned
    owned_after: Owned

    @property
    def steps(self) -> tuple[Step, ...]:
        return tuple(step for _, step in self.entries)

    def for_network(self, name: str) -> tuple[Step, ...]:
        return tuple(step for networks, step in self.entries if name in networks)

    def __str__(self) -> str:
        lines = [f"host networks ({self.path}):"]
        lines += [f"  {number}. {step.describe()}" for number, step in enumerate(self.steps, 1)]
        if not self.entries:
            lines.append("  nothing to do on this host")
        return "\n".join(lines)


class _Planner:
    def __init__(self, host_map: NetworkMap, state: HostState, owned: Owned,
                 datapath_type: str | None, *, keep: frozenset[str] = frozenset(),
                 keep_uplinks: bool = True) -> None:
        self.map = host_map
        #: With :attr:`keep`: whether the uplinks the kept bridges hold stay there too.
        self.keep_uplinks = keep_uplinks
        #: vifplug's bridges (Linux or OVS) that still hold guests: not removed, and no port
        #: (an uplink) taken from them yet — the build half of a switch transition.
        self.keep = keep
        self.state = state
        self.owned = owned
        self.datapath_type = datapath_type
        self.problems: list[str] = []
        self.link_removals: list[tuple[tuple[str, ...], Step]] = []
        self.links: list[tuple[tuple[str, ...], Step]] = []
        self.masters: list[tuple[tuple[str, ...], Step]] = []
        self.ovs_removals: list[tuple[tuple[str, ...], Step]] = []
        self.ovs_steps: list[tuple[tuple[str, ...], Step]] = []
        self.devices_after: dict[str, OwnedDevice] = {}
        #: Owned devices deleted and made again (their ports attached again).
        self.remade: set[str] = set()
        self.ports_after: dict[str, str] = {}

    def problem(self, where: tuple[str, ...], message: str) -> None:
        self.problems.append(str(self.map.error(where, message)))

    # --- Linux bridges ---

    def legacy(self) -> None:
        links, owned = self.state.links, self.owned.devices
        bridges = legacy_bridges(self.map)
        # An uplink-less bridge that exists (a bridge an operator made) is used as it is.
        used = {b.name for b in bridges if b.uplink is None and b.name not in owned
                and b.name in links and links[b.name].kind == "bridge"}
        existing = {name for name in links if name not in used}
        self.problems += [str(p) for p in legacy_device_problems(self.map, existing, owned)]
        # Owned bonds whose mode changes are made again: the VLAN devices on them with them.
        self.remade = {b.uplink.name for b in bridges if isinstance(b.uplink, Bond)
                       and b.uplink.name in links and b.uplink.name in owned
                       and owned[b.uplink.name].mode != b.uplink.mode}
        for bridge in bridges:
            networks = (bridge.network,)
            where = ("networks", bridge.network)
            uplink = bridge.uplink
            if isinstance(uplink, Nic):
                self._legacy_nic(networks, where, uplink.name, bridge=bridge.name,
                                 port=bridge.port, mtu=bridge.uplink_mtu)
            elif isinstance(uplink, Bond):
                self._legacy_bond(networks, uplink, bridge.uplink_mtu)
            if bridge.vlan is not None and bridge.port is not None and uplink is not None:
                self._legacy_vlan(networks, bridge.port, uplink.name, bridge.vlan, bridge.mtu)
            if bridge.name in used:
                continue
            self._legacy_bridge(networks, bridge.name, bridge.mtu)
            if bridge.port is not None:
                self.ports_after[bridge.port] = bridge.name
                held = links.get(bridge.port)
                if self._held_by_kept(bridge.port):
                    pass  # the uplink leaves the old switch later (after the guests)
                elif held is None or held.master != bridge.name or bridge.name not in links \
                        or bridge.port in self.remade:
                    self.masters.append((networks, EnsureMaster(bridge.port, bridge.name)))
            for port, master in sorted(self.owned.ports.items()):
                # An uplink vifplug attached that the map no longer gives this bridge.
                found = links.get(port)
                if master == bridge.name and port != bridge.port and found is not None \
                        and found.master == bridge.name:
                    self.link_removals.append((networks, ReleasePort(port, bridge.name)))

    def _held_by_kept(self, name: str) -> bool:
        """Whether ``name`` is a port of a bridge in :attr:`keep` (Linux master or OVS)."""
        if not self.keep or not self.keep_uplinks:
            return False
        link = self.state.links.get(name)
        port = self.state.ports.get(name)
        return (link is not None and link.master in self.keep) or (
            port is not None and port.bridge in self.keep)

    def _legacy_nic(self, networks: tuple[str, ...], where: tuple[str, ...], nic: str, *,
                    bridge: str, port: str | None, mtu: int | None) -> None:
        link = self.state.links.get(nic)
        if link is None:
            return  # legacy_device_problems names it
        if port == nic and link.master not in (None, bridge) \
                and link.master not in self.owned.devices:
            self.problem((*where, "nic"), f"{nic} is a port of {link.master}, which is not "
                         "vifplug's: release it first")
        if not link.up or (mtu is not None and link.mtu != mtu):
            self._add_link(networks, EnsureNicUp(nic, mtu))

    def _add_link(self, networks: tuple[str, ...], step: Step) -> None:
        for index, (others, found) in enumerate(self.links):
            if found == step:  # one NIC or bond under several networks: one step
                self.links[index] = (tuple(sorted({*others, *networks})), found)
                return
        self.links.append((networks, step))

    def _legacy_bond(self, networks: tuple[str, ...], bond: Bond, mtu: int | None) -> None:
        links = self.state.links
        record = OwnedDevice(bond.name, "bond", networks[0], mode=bond.mode, nics=bond.nics)
        self.devices_after.setdefault(bond.name, record)
        current = self.owned.devices.get(bond.name)
        link = links.get(bond.name)
        step = EnsureBond(bond.name, bond.mode, bond.nics, mtu)
        if bond.name in self.remade and current is not None:
            if (networks, DeleteOwnedLink(current)) not in self.link_removals:
                self.link_removals.append((networks, DeleteOwnedLink(current)))
                self._add_link(networks, step)
            return
        members_right = all(links.get(nic) is not None and links[nic].master == bond.name
                            for nic in bond.nics)
        if link is None or not members_right or not link.up \
                or (mtu is not None and link.mtu != mtu):
            self._add_link(networks, step)
        for nic in (current.nics if current is not None else ()):
            if nic not in bond.nics and links.get(nic) is not None \
                    and links[nic].master == bond.name:
                self.link_removals.append((networks, ReleasePort(nic, bond.name)))

    def _legacy_vlan(self, networks: tuple[str, ...], name: str, parent: str, vlan: int,
                     mtu: int | None) -> None:
        self.devices_after[name] = OwnedDevice(name, "vlan", networks[0], parent, vlan)
        link = self.state.links.get(name)
        current = self.owned.devices.get(name)
        if link is not None and current is not None and ((current.parent, current.vlan) != (
                parent, vlan) or parent in self.remade):
            self.link_removals.append((networks, DeleteOwnedLink(current)))
            self.remade.add(name)
            link = None
        if link is None or not link.up or (mtu is not None and link.mtu != mtu):
            self.links.append((networks, EnsureVlanLink(name, parent, vlan, mtu)))

    def _legacy_bridge(self, networks: tuple[str, ...], name: str, mtu: int | None) -> None:
        self.devices_after[name] = OwnedDevice(name, "bridge", networks[0])
        link = self.state.links.get(name)
        if link is None or not link.up or (mtu is not None and link.mtu != mtu):
            self.links.append((networks, EnsureLinuxBridge(name, mtu)))

    def legacy_removals(self) -> None:
        """What vifplug made for networks the map no longer has: bridges first (they free
        their ports), then VLAN devices, then bonds (they free their NICs)."""
        links = self.state.links
        order = {"bridge": 0, "vlan": 1, "bond": 2}
        gone = [device for name, device in self.owned.devices.items()
                if name in links and self.devices_after.get(name, None) is None]
        for device in sorted(gone, key=lambda d: (order.get(d.kind, 3), d.name)):
            if links[device.name].kind != device.kind:
                continue  # not what vifplug made (replaced by someone): not its business
            if device.name in self.keep:
                self.devices_after[device.name] = device  # still vifplug's, removed later
                for port, master in self.owned.ports.items():
                    if master != device.name:
                        continue
                    if self.keep_uplinks:
                        self.ports_after[port] = master
                    elif port in links and links[port].master == device.name:
                        self.link_removals.append(((device.network,),
                                                   ReleasePort(port, device.name)))
                continue
            if device.kind == "bridge":
                foreign = sorted(name for name, link in links.items()
                                 if link.master == device.name and
                                 self.owned.ports.get(name) != device.name)
                if foreign:
                    self.problems.append(
                        f"{self.map.path}: network {device.network} is gone from the map, but "
                        f"its Linux bridge {device.name} still holds {', '.join(foreign)} "
                        "(not vifplug's): unplug them first")
                    continue
            self.link_removals.append(((device.network,), DeleteOwnedLink(device)))

    # --- OVS ---

    def ovs(self) -> None:
        bridges = ovs_bridges(self.map)
        state = self.state
        if not bridges:
            return
        if state.bridges is None:
            self.problems.append(f"{self.map.path}: the map has ovs networks "
                                 f"({', '.join(n for b in bridges for n in b.networks)}) but "
                                 "this host has no OVSDB to build their bridges in")
            return
        for bridge in bridges:
            networks = bridge.networks
            where = ("networks", networks[0], "bridge")
            row = state.bridges.get(bridge.name)
            if row is not None and not row.owned:
                if bridge.uplink is None:
                    continue  # a host-internal bridge someone made: used as it is
                self.problem(where, f"OVS bridge {bridge.name} exists and is not vifplug's "
                             f"(no external_ids:{OWNER_KEY}): vifplug makes an uplink's bridge "
                             "itself; remove it or name another bridge here")
                continue
            link = state.links.get(bridge.name)
            if link is not None and bridge.name in self.keep:
                self.problem(where, f"vifplug's Linux bridge {bridge.name} still holds guests: "
                             "the OVS bridge of the same name cannot be built beside it; name "
                             "another bridge here, or stop the guests")
                continue
            if link is not None and bridge.name in self.owned.devices \
                    and bridge.name not in self.devices_after:
                link = None  # vifplug's Linux device of that name goes first (a transition)
            if row is None and link is not None:
                self.problem(where, f"{bridge.name} exists on this host as a "
                             f"{link.kind or 'plain'} device, not vifplug's: vifplug makes "
                             "this OVS bridge itself; remove the device or name another "
                             "bridge here")
                continue
            want = EnsureOwnedOvsBridge(bridge.name, self.datapath_type, bridge.mtu)
            if row is None or (self.datapath_type is not None
                               and row.datapath_type != self.datapath_type) \
                    or (bridge.mtu is not None and row.mtu_request != bridge.mtu):
                self.ovs_steps.append((networks, want))
            keep = None
            if bridge.uplink is not None:
                keep = bridge.uplink.name
                self._ovs_uplink(bridge.name, networks, bridge.uplink, trunks=bridge.trunks,
                                 native=bridge.native_vlan, mtu=bridge.mtu)
            for port in (row.ports if row is not None else ()):
                found = state.ports.get(port)
                if found is not None and found.owned and port != keep:
                    self.ovs_removals.append((networks, DeleteOvsPort(port)))

    def _ovs_uplink(self, bridge: str, networks: tuple[str, ...], uplink: Uplink, *,
                    trunks: tuple[int, ...], native: int | None, mtu: int | None) -> None:
        state = self.state
        key = "nic" if isinstance(uplink, Nic) else "bond"
        where = ("networks", networks[0], key)
        for nic in uplink.nics:
            link = state.links.get(nic)
            if link is None:
                self.problem(where, f"NIC {nic} does not exist on this host")
                continue
            if link.master not in (None, "ovs-system") and link.master not in self.owned.devices:
                self.problem(where, f"{nic} is a port of {link.master}, which is not "
                             "vifplug's: release it first")
            if not link.up:
                self._add_link(networks, EnsureNicUp(nic, None))
            elsewhere = state.ports.get(nic)
            if nic != uplink.name and elsewhere is not None and not elsewhere.owned:
                self.problem(where, f"{nic} is OVS port {nic} on bridge {elsewhere.bridge}, "
                             "which is not vifplug's: remove it first")
        bond_mode: str | None = None
        lacp: str | None = None
        if isinstance(uplink, Bond):
            bond_mode, lacp = uplink.ovs_mode
        if trunks and native is not None:
            tag, vlan_mode = native, "native-untagged"
        elif trunks:
            tag, vlan_mode = None, "trunk"
        else:
            tag, vlan_mode = native, "access"
        port = state.ports.get(uplink.name)
        if port is not None and not port.owned:
            self.problem(where, f"OVS port {uplink.name} exists on bridge {port.bridge} and is "
                         "not vifplug's: remove it first")
            return
        replace = port is not None and (port.bridge != bridge
                                        or tuple(sorted(port.interfaces)) != tuple(
                                            sorted(uplink.nics)))
        step = EnsureOvsUplink(bridge, uplink.name, tuple(uplink.nics), tag, trunks, vlan_mode,
                               bond_mode, lacp, mtu, replace=replace)
        if any(self._held_by_kept(name) for name in (uplink.name, *uplink.nics)):
            return  # the uplink leaves the old switch later (after the guests)
        if port is None or replace or (port.tag, tuple(port.trunks), port.vlan_mode,
                                       port.bond_mode, port.lacp) != (
                tag, trunks, vlan_mode, bond_mode, lacp) or (
                mtu is not None and any(state.mtu_requests.get(nic) != mtu
                                        for nic in uplink.nics)):
            self.ovs_steps.append((networks, step))

    def ovs_removals_of_gone(self) -> None:
        """vifplug's OVS bridges that no network of the map has any more."""
        state = self.state
        if state.bridges is None:
            return
        wanted = {bridge.name for bridge in ovs_bridges(self.map)}
        for name, row in sorted(state.bridges.items()):
            if not row.owned or name in wanted:
                continue
            if name in self.keep:
                if not self.keep_uplinks:  # its uplink (vifplug's port) leaves it now
                    self.ovs_removals += [((), DeleteOvsPort(port)) for port in row.ports
                                         if port != name and (state.ports.get(port)
                                                              or _NO_PORT).owned]
                continue
            foreign = sorted(port for port in row.ports if port != name
                             and not (state.ports.get(port) or _NO_PORT).owned)
            if foreign:
                self.problems.append(
                    f"{self.map.path}: vifplug's OVS bridge {name} is no network's any more, "
                    f"but it still holds {', '.join(foreign)} (not vifplug's): unplug them first")
                continue
            self.ovs_removals.append(((), DeleteOwnedOvsBridge(name)))

    def plan(self) -> HostPlan:
        self.legacy()
        self.legacy_removals()
        self.ovs()
        self.ovs_removals_of_gone()
        if self.problems:
            raise HostMapError("\n".join(dict.fromkeys(self.problems)))
        order = {"bridge": 1, "vlan": 2, "bond": 3}
        removals = sorted(self.link_removals, key=lambda entry: (
            order.get(entry[1].owned.kind, 4) if isinstance(entry[1], DeleteOwnedLink) else 0))
        entries = (*removals, *self.links, *self.masters, *self.ovs_removals,
                   *self.ovs_steps)
        ports = {port: bridge for port, bridge in self.ports_after.items()
                 if bridge in self.devices_after}
        return HostPlan(self.map.path, tuple(entries), self.owned,
                        Owned(dict(sorted(self.devices_after.items())), ports))


_NO_PORT = OvsPortState("", None, owned=False)


def plan_host(host_map: NetworkMap, state: HostState, owned: Owned = Owned(), *,
              datapath_type: str | None = None,
              keep: Iterable[str] = (), keep_uplinks: bool = True) -> HostPlan:
    """The steps that make the host as the map says; :class:`HostMapError` (every problem, one
    per line, each naming ``file:line: key`` or the device) when it cannot be done, including a
    map that mixes switch types (:func:`~vifplug.netlayout.one_switch_type_problem`).
    ``datapath_type``: the OVS bridges' (``netdev`` for the userspace datapath; None: OVS's
    default, and an existing bridge's is left as it is).

    ``keep``: vifplug's Linux or OVS bridges that still hold guests (the old switch of a
    transition, before the guests move): they are neither removed nor robbed of a port — an
    uplink they hold stays there, and the steps that would move it are left out (a plan made
    without ``keep`` afterwards has them); :attr:`HostPlan.owned_after` still lists them.
    ``keep_uplinks=False``: the kept bridges stay, but their uplinks move to the new switch now
    (released from a kept Linux bridge; their port removed from a kept OVS bridge)."""
    mixed = one_switch_type_problem(host_map)
    if mixed is not None:
        raise HostMapError(str(mixed))
    return _Planner(host_map, state, owned, datapath_type, keep=frozenset(keep),
                    keep_uplinks=keep_uplinks).plan()


# --- steps of net devices ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EnsureNicUp(LinkStep):
    """An existing NIC (vifplug never makes one) up, with this MTU."""

    name: str
    mtu: int | None = None

    @property
    def device(self) -> str:
        return self.name

    def describe(self) -> str:
        mtu = f" (mtu {self.mtu})" if self.mtu is not None else ""
        return f"ensure NIC {self.name} is up{mtu}"

    def apply_link(self, changes: LinkChanges) -> None:
        link = changes.netlink.get(self.name)
        if link is None:
            raise _host_error(f"NIC {self.name} does not exist", self.name)
        changes.settle(link, False, self.mtu)


@dataclass(frozen=True, slots=True)
class EnsureBond(LinkStep):
    """A kernel bond of these NICs in this mode, up (a NIC is set down to be enslaved)."""

    name: str
    mode: str
    nics: tuple[str, ...]
    mtu: int | None = None

    @property
    def device(self) -> str:
        return self.name

    def describe(self) -> str:
        mtu = f", mtu {self.mtu}" if self.mtu is not None else ""
        return f"ensure bond {self.name} ({self.mode}: {', '.join(self.nics)}{mtu})"

    def apply_link(self, changes: LinkChanges) -> None:
        netlink = changes.netlink
        bond, created = changes.create(self.name, lambda: netlink.add_bond(self.name,
                                                                           self.mode))
        if not created and bond.kind != "bond":
            raise _host_error(f"{self.name} exists but is not a bond", self.name)
        for nic in self.nics:
            link = netlink.get(nic)
            if link is None:
                raise _host_error(f"NIC {nic} does not exist", nic)
            if link.master == bond.index:
                continue
            if link.up:
                netlink.update(nic, up=False)
                changes.undo(_updater(netlink, nic, up=True))
            netlink.set_master(nic, bond.index)
            changes.undo(_master_setter(netlink, nic, link.master))
        changes.settle(bond, created, self.mtu)
        for nic in self.nics:
            link = netlink.get(nic)
            if link is not None and not link.up:
                changes.settle(link, False, None)


def _updater(netlink: Netlink, name: str, *, up: bool) -> Callable[[], None]:
    return lambda: netlink.update(name, up=up)


def _master_setter(netlink: Netlink, name: str, master: int | None) -> Callable[[], None]:
    return lambda: netlink.set_master(name, master)


@dataclass(frozen=True, slots=True)
class ReleasePort(LinkStep):
    """Take a port vifplug attached out of its bridge or bond (the map no longer has it)."""

    name: str
    master: str

    @property
    def device(self) -> str:
        return self.name

    def describe(self) -> str:
        return f"release {self.name} from {self.master}"

    def apply_link(self, changes: LinkChanges) -> None:
        netlink = changes.netlink
        link, master = netlink.get(self.name), netlink.get(self.master)
        if link is None or master is None or link.master != master.index:
            return
        netlink.set_master(self.name, None)
        changes.undo(lambda: netlink.set_master(self.name, master.index))


@dataclass(frozen=True, slots=True)
class DeleteOwnedLink(LinkStep):
    """Delete a device ``host apply`` made; undone by making it again as it was (kind, mode or
    VLAN, bridge timers, MTU, up, and the ports it held)."""

    owned: OwnedDevice

    @property
    def device(self) -> str:
        return self.owned.name

    def describe(self) -> str:
        what = {"bridge": "Linux bridge", "vlan": "VLAN device", "bond": "bond"}
        return (f"delete {what.get(self.owned.kind, self.owned.kind)} {self.owned.name} "
                f"(vifplug's, for network {self.owned.network})")

    def apply_link(self, changes: LinkChanges) -> None:
        netlink, owned = changes.netlink, self.owned
        link = netlink.get(owned.name)
        if link is None:
            return
        ports = [(other.name, other.up) for other in netlink.links()
                 if other.master == link.index]
        master = netlink.name_of(link.master) if link.master is not None else None
        parent = netlink.name_of(link.link) if owned.kind == "vlan" and link.link else None
        netlink.delete(owned.name)

        def make_again() -> None:
            if owned.kind == "bridge":
                netlink.add_bridge(owned.name, forward_delay=link.forward_delay,
                                   ageing_time=link.ageing_time)
            elif owned.kind == "vlan":
                netlink.add_vlan(owned.name, parent or owned.parent or "", owned.vlan or 0)
            else:
                netlink.add_bond(owned.name, owned.mode or "active-backup")
            made = netlink.get(owned.name)
            if made is None:
                raise _host_error(f"{owned.name} vanished right after it was made again",
                                  owned.name)
            for port, up in ports:
                if owned.kind == "bond" and up:
                    netlink.update(port, up=False)
                netlink.set_master(port, made.index)
                if up:
                    netlink.update(port, up=True)
            again = netlink.get(owned.name)
            if link.address is not None and again is not None and again.address != link.address:
                netlink.set_address(owned.name, link.address)
            netlink.update(owned.name, mtu=link.mtu, up=link.up, group=link.group or None)
            holder = netlink.get(master) if master is not None else None
            if holder is not None:
                netlink.set_master(owned.name, holder.index)

        changes.undo(make_again)


# --- OVSDB steps (written with ovs-vsctl: host apply's backend) --------------------------------


class _HostOvsdbStep(OvsdbStep):
    """An OVSDB step planned from a read of the host: it exists only where the host differs
    from the map, so it never holds already. ``host apply`` commits with ``ovs-vsctl`` (one
    invocation, one transaction); the native backend is not offered for these steps."""

    tables: ClassVar[tuple[Table, ...]] = ("Bridge",)

    def snapshot_names(self) -> Iterable[tuple[Table, str]]:
        return ((table, self.device) for table in self.tables)

    def holds(self, snapshot: Snapshot) -> bool:
        return False

    def ovsdb_native(self, api: Any, txn: Any) -> None:
        raise TypeError(f"{type(self).__name__} is applied with ovs-vsctl only: {self}")


def _owner(table: str, record: str) -> list[str]:
    return ["set", table, record, f"external_ids:{OWNER_KEY}={OWNER}"]


@dataclass(frozen=True, slots=True)
class EnsureOwnedOvsBridge(_HostOvsdbStep):
    """An OVS bridge marked as vifplug's, with this datapath type and MTU."""

    bridge: str
    datapath_type: str | None = None
    mtu: int | None = None

    @property
    def device(self) -> str:
        return self.bridge

    def describe(self) -> str:
        extra = [f"{OWNER_KEY}={OWNER}"]
        if self.datapath_type:
            extra.append(f"datapath {self.datapath_type}")
        if self.mtu is not None:
            extra.append(f"mtu {self.mtu}")
        return f"ensure OVS bridge {self.bridge} ({', '.join(extra)})"

    def vsctl_commands(self) -> list[list[str]]:
        commands = [["--may-exist", "add-br", self.bridge], _owner("Bridge", self.bridge)]
        if self.datapath_type:
            commands[-1].append(f"datapath_type={self.datapath_type}")
        if self.mtu is not None:
            commands.append(["set", "Interface", self.bridge, f"mtu_request={self.mtu}"])
        return commands


@dataclass(frozen=True, slots=True)
class EnsureOvsUplink(_HostOvsdbStep):
    """The uplink's port on its OVS bridge: one NIC, or an OVS bond of several, carrying the
    bridge's networks (``trunks``; the untagged network's native VLAN as ``tag``), marked as
    vifplug's; ``replace``: remove the port first (it is elsewhere, or has other NICs)."""

    tables: ClassVar[tuple[Table, ...]] = ("Port",)

    bridge: str
    port: str
    nics: tuple[str, ...]
    tag: int | None
    trunks: tuple[int, ...]
    vlan_mode: str
    bond_mode: str | None = None
    lacp: str | None = None
    mtu: int | None = None
    replace: bool = False

    @property
    def device(self) -> str:
        return self.port

    def describe(self) -> str:
        what = (f"OVS bond {self.port} ({self.bond_mode}, lacp {self.lacp}: "
                f"{', '.join(self.nics)})" if self.bond_mode else f"OVS port {self.port}")
        extra = [f"vlan_mode={self.vlan_mode}"]
        if self.tag is not None:
            extra.append(f"tag={self.tag}")
        if self.trunks:
            extra.append(f"trunks={','.join(map(str, self.trunks))}")
        if self.mtu is not None:
            extra.append(f"mtu_request={self.mtu}")
        again = ", made again" if self.replace else ""
        return f"ensure {what} on {self.bridge} ({', '.join(extra)}{again})"

    def vsctl_commands(self) -> list[list[str]]:
        commands = []
        if self.replace:
            commands.append(["--if-exists", "del-port", self.port])
        if len(self.nics) > 1 or self.bond_mode:
            commands.append(["--may-exist", "add-bond", self.bridge, self.port, *self.nics])
        else:
            commands.append(["--may-exist", "add-port", self.bridge, self.port])
        port = _owner("Port", self.port)
        port += [f"tag={_vsctl_value([] if self.tag is None else self.tag)}",
                 f"trunks={_vsctl_value(list(self.trunks))}",
                 f"vlan_mode={self.vlan_mode}",
                 f"bond_mode={_vsctl_value([] if self.bond_mode is None else self.bond_mode)}",
                 f"lacp={_vsctl_value([] if self.lacp is None else self.lacp)}"]
        commands.append(port)
        if self.mtu is not None:
            commands += [["set", "Interface", nic, f"mtu_request={self.mtu}"]
                         for nic in self.nics]
        return commands


@dataclass(frozen=True, slots=True)
class DeleteOwnedOvsBridge(_HostOvsdbStep):
    """Delete an OVS bridge vifplug made (and its ports: vifplug's own uplink)."""

    bridge: str

    @property
    def device(self) -> str:
        return self.bridge

    def describe(self) -> str:
        return f"delete OVS bridge {self.bridge} (vifplug's)"

    def vsctl_commands(self) -> list[list[str]]:
        return [["--if-exists", "del-br", self.bridge]]
