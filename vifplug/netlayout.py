"""How the network map lays out on the host: the rules across networks (shared uplinks, bonds,
VLANs), the OVS bridges (one per uplink), the Linux bridges' ports, and the one-switch-type rule.

Pure: values in, values (or a :class:`~vifplug.netmap.MapRuleError` naming the key) out; every
result is independent of the order of the map's tables. The loader calls :func:`resolve`, so a
loaded map already obeys every rule here but the one-switch-type rule, which only ``host apply``
enforces (:func:`one_switch_type_problem`): the hook must keep serving a mixed map.

Light like netmap.py (the hook loads it on every incoming migration).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import NamedTuple

from vifplug import spec
from vifplug.names import uplink_bridge_name
from vifplug.netmap import (
    Bond,
    DirectNetwork,
    LegacyNetwork,
    MappedNetwork,
    MapRuleError,
    NetworkMap,
    NetworkMapError,
    Nic,
    OvnNetwork,
    OvsNetwork,
    Uplink,
    definition_key,
)

__all__ = [
    "LegacyBridge",
    "OvsBridge",
    "legacy_bridges",
    "legacy_device_problems",
    "one_switch_type_problem",
    "ovs_bridges",
    "resolve",
]

#: Which switch family each switch type belongs to for the one-switch-type rule: ``ovn`` rides
#: on OVS (its integration bridge), ``direct`` (macvtap on a NIC) is neither and mixes with both.
_FAMILY = {"legacy": "legacy", "ovs": "ovs", "ovn": "ovs"}

Uplinked = LegacyNetwork | OvsNetwork


class OvsBridge(NamedTuple):
    """An OVS bridge the map's ``ovs`` networks need."""

    name: str
    #: Its one uplink port (a NIC, or an OVS bond); None for a host-internal bridge.
    uplink: Uplink | None
    #: The VLANs the uplink carries tagged (its ``trunks``), sorted; () without an uplink.
    trunks: tuple[int, ...]
    #: The bridge-internal VLAN of its untagged network: the uplink's ``tag`` with
    #: ``vlan_mode=native-untagged``, and that network's guests' access tag.
    native_vlan: int | None
    #: The largest MTU its networks give (the bridge and the uplink get it); None: none given.
    mtu: int | None
    #: Its networks' names, sorted.
    networks: tuple[str, ...]
    #: Whether a network names it in the map (else vifplug named it after the uplink).
    named: bool


class LegacyBridge(NamedTuple):
    """A ``legacy`` network's Linux bridge and the device it holds."""

    name: str
    network: str
    uplink: Uplink | None
    vlan: int | None
    #: The uplink itself, or its VLAN device (``eth1.100``); None for a host-internal bridge.
    port: str | None
    mtu: int | None
    #: The uplink's MTU: the largest of the ``legacy`` networks on it (None: none given).
    uplink_mtu: int | None


# --- the loader's entry point ---------------------------------------------------------------


def resolve(networks: Mapping[str, MappedNetwork]) -> dict[str, MappedNetwork]:
    """Check the rules across networks and settle each ``ovs`` network's bridge and native VLAN.

    Raises :class:`MapRuleError` naming the offending key (of the network later by name when two
    collide). Idempotent: resolving a resolved map returns it unchanged.
    """
    uplinked = _uplinked(networks)
    _check_bonds(uplinked)
    _check_shared_uplinks(uplinked)
    _check_legacy_bridges(networks)
    _check_direct(networks, uplinked)
    bridges = _ovs_layout(networks)
    resolved = dict(networks)
    for bridge in bridges:
        for name in bridge.networks:
            network = networks[name]
            assert isinstance(network, OvsNetwork)  # noqa: S101 - _ovs_layout takes only these
            native = bridge.native_vlan if _untagged(network) else None
            resolved[name] = network._replace(bridge=bridge.name, native_vlan=native)
    return resolved


def _uplinked(networks: Mapping[str, MappedNetwork]) -> list[tuple[str, Uplinked, Uplink]]:
    """The networks with an uplink, by name."""
    return [(name, network, network.uplink) for name, network in sorted(networks.items())
            if isinstance(network, LegacyNetwork | OvsNetwork) and network.uplink is not None]


def _key(uplink: Uplink) -> str:
    return "nic" if isinstance(uplink, Nic) else "bond"


def _untagged(network: Uplinked) -> bool:
    return network.vlan is None and not (isinstance(network, OvsNetwork) and network.trunk)


# --- common rules: bonds, shared uplinks, VLANs ------------------------------------------------


def _check_bonds(uplinked: list[tuple[str, Uplinked, Uplink]]) -> None:
    """A bond is one device: every network naming it gives the same table; a NIC is in one bond
    at most, and a bond's NIC or a bond is never also a network's ``nic``."""
    bonds: dict[str, tuple[str, Bond]] = {}
    member_of: dict[str, tuple[str, str]] = {}  # NIC -> (bond, network)
    for name, _, uplink in uplinked:
        if not isinstance(uplink, Bond):
            continue
        where = ("networks", name, "bond")
        first = bonds.get(uplink.name)
        if first is not None:
            if first[1] != uplink:
                raise MapRuleError(where, f"bond {uplink.name} is {first[1].mode} of "
                                   f"{', '.join(first[1].nics)} in network {first[0]}: a bond is "
                                   "one device, give each network on it the same table")
            continue
        if uplink.name in member_of:
            bond, network = member_of[uplink.name]
            raise MapRuleError((*where, "name"), f"{uplink.name} is a NIC of bond {bond} "
                               f"(network {network})")
        bonds[uplink.name] = (name, uplink)
        for nic in uplink.nics:
            if nic in member_of or nic in bonds:
                bond, network = member_of.get(nic) or (nic, bonds[nic][0])
                what = "a bond" if nic == bond else f"in bond {bond}"
                raise MapRuleError((*where, "nics"), f"{nic} is {what} already (network "
                                   f"{network}): a NIC is in one bond at most")
            member_of[nic] = (uplink.name, name)
    for name, _, uplink in uplinked:
        if isinstance(uplink, Nic) and uplink.name in member_of:
            bond, network = member_of[uplink.name]
            raise MapRuleError(("networks", name, "nic"), f"{uplink.name} is a NIC of bond {bond} "
                               f"(network {network}): use the bond as the uplink")
        if isinstance(uplink, Nic) and uplink.name in bonds:
            raise MapRuleError(("networks", name, "nic"), f"{uplink.name} is a bond (network "
                               f"{bonds[uplink.name][0]}): give the same bond table here")


def _check_shared_uplinks(uplinked: list[tuple[str, Uplinked, Uplink]]) -> None:
    """Networks sharing an uplink are of one switch (the uplink is a port of one Linux bridge
    or one OVS bridge), and are told apart by VLAN: no tag twice, one untagged network at most."""
    first_user: dict[str, tuple[str, str]] = {}  # uplink -> (network, switch)
    carried: dict[tuple[str, int | None], str] = {}  # (uplink, tag or None) -> network
    for name, network, uplink in uplinked:
        user = first_user.setdefault(uplink.name, (name, network.switch))
        if user[1] != network.switch:
            raise MapRuleError(("networks", name, _key(uplink)), f"{uplink.name} is the uplink "
                               f"of {user[1]} network {user[0]}: an uplink is a port of one "
                               "switch, Linux bridge or OVS")
        for tag, key in _wire_tags(network, uplink):
            other = carried.setdefault((uplink.name, tag), name)
            if other == name:
                continue
            said = "untagged" if tag is None else f"VLAN {tag}"
            raise MapRuleError(("networks", name, *key), f"network {other} is {said} on uplink "
                               f"{uplink.name} already: networks sharing an uplink need different "
                               "VLANs (one of them untagged at most)")


def _wire_tags(network: Uplinked,
               uplink: Uplink) -> Iterable[tuple[int | None, tuple[str, ...]]]:
    """The tags a network puts on its uplink (None: untagged), with the key that gives each:
    its own, then its portgroups' (an ``ovs`` network's portgroup VLANs are the network's
    too, carried on the same uplink)."""
    if network.vlan is not None:
        tags: list[tuple[int | None, tuple[str, ...]]] = [(network.vlan, ("vlan",))]
    elif isinstance(network, OvsNetwork) and network.trunk:
        tags = [(tag, ("trunk",)) for tag in network.trunk]
    else:
        tags = [(None, (_key(uplink),))]
    return tags + [(tag, ("portgroups", group, key)) for tag, group, key in _group_tags(network)]


def _group_tags(network: MappedNetwork) -> list[tuple[int, str, str]]:
    """The VLANs an ``ovs`` network's portgroups give: (tag, portgroup, key)."""
    if not isinstance(network, OvsNetwork):
        return []
    return [(tag, group.name, "vlan" if group.vlan is not None else "trunk")
            for group in network.portgroups
            for tag in ((group.vlan,) if group.vlan is not None else group.trunk or ())]


def _check_legacy_bridges(networks: Mapping[str, MappedNetwork]) -> None:
    """A Linux bridge with an uplink is one network's (two networks on it would be one
    segment); bridges without uplinks may be shared as before."""
    owner: dict[str, LegacyNetwork] = {}
    for name, network in sorted(networks.items()):
        if not isinstance(network, LegacyNetwork):
            continue
        first = owner.setdefault(network.bridge, network)
        if first is not network and (first.uplink is not None or network.uplink is not None):
            raise MapRuleError(("networks", name, "bridge"), f"Linux bridge {network.bridge} is "
                               f"network {first.name}'s too: a Linux bridge with an uplink "
                               "carries one network")


def _check_direct(networks: Mapping[str, MappedNetwork],
                  uplinked: list[tuple[str, Uplinked, Uplink]]) -> None:
    """macvtap cannot sit on a device a bridge or a bond holds (one receive handler each)."""
    held: dict[str, str] = {}  # device -> what holds it
    for name, holder, uplink in uplinked:
        if isinstance(uplink, Bond):
            held.update(dict.fromkeys(uplink.nics, f"a NIC of bond {uplink.name} "
                                      f"(network {name})"))
        if isinstance(holder, OvsNetwork) or holder.vlan is None:
            held.setdefault(uplink.name, f"the uplink of network {name}, a port of its bridge")
    for name, network in sorted(networks.items()):
        if not isinstance(network, DirectNetwork):
            continue
        key = "interfaces" if network.pool else "interface"
        for nic in network.nics:
            if nic in held:
                raise MapRuleError(("networks", name, key), f"{nic} is {held[nic]}: macvtap "
                                   "needs a device no bridge or bond holds")


# --- OVS: one bridge per uplink -------------------------------------------------------------


def ovs_bridges(host_map: NetworkMap) -> tuple[OvsBridge, ...]:
    """The OVS bridges the map's ``ovs`` networks need, by name: one per uplink, holding every
    network on that uplink (told apart by tag), named by the map or ``br-<uplink>``
    (:func:`vifplug.names.uplink_bridge_name`); and each named bridge without an uplink."""
    return _ovs_layout(host_map.every_definition())


def _ovs_layout(networks: Mapping[str, MappedNetwork]) -> tuple[OvsBridge, ...]:
    ovs = {name: n for name, n in sorted(networks.items()) if isinstance(n, OvsNetwork)}
    placed, derived = _place(ovs)
    _check_derived_names(networks, ovs, placed, derived)
    members: dict[str, list[str]] = {}
    for name, bridge in placed.items():
        members.setdefault(bridge, []).append(name)
    return tuple(_bridge(bridge, [ovs[name] for name in names])
                 for bridge, names in sorted(members.items()))


def _place(ovs: Mapping[str, OvsNetwork]) -> tuple[dict[str, str], set[str]]:
    """Each ``ovs`` network's bridge: the one it names, else its uplink's (named by a network
    on that uplink, else derived), and the networks whose bridge is derived. One bridge per
    uplink, one uplink per bridge, no network without an uplink on a bridge that has one, and
    an uplink's bridge a device of its own."""
    by_uplink: dict[str, tuple[str, str]] = {}  # uplink -> (bridge, network naming it)
    by_bridge: dict[str, tuple[str | None, str]] = {}  # named bridge -> (uplink, network)
    for name, network in ovs.items():
        if not network.bridge_given:
            continue
        uplink = network.uplink.name if network.uplink is not None else None
        first = by_bridge.setdefault(network.bridge, (uplink, name))
        if first[0] != uplink:
            raise _bridge_uplinks_error(name, network, first)
        if uplink is not None:
            bridge, other = by_uplink.setdefault(uplink, (network.bridge, name))
            if bridge != network.bridge:
                raise MapRuleError(("networks", name, "bridge"), f"uplink {uplink} is on OVS "
                                   f"bridge {bridge} (network {other}): one OVS bridge per "
                                   "uplink (a port is on one bridge)")
    placed, derived = {}, set()
    for name, network in ovs.items():
        if network.bridge_given or network.uplink is None:
            placed[name] = network.bridge
        elif network.uplink.name in by_uplink:
            placed[name] = by_uplink[network.uplink.name][0]
        else:
            placed[name] = uplink_bridge_name(network.uplink.name)
            derived.add(name)
    return placed, derived


def _bridge_uplinks_error(name: str, network: OvsNetwork,
                          first: tuple[str | None, str]) -> MapRuleError:
    where = ("networks", name, "bridge")
    uplink, other = first
    if uplink is None:
        return MapRuleError(where, f"{network.bridge} is network {other}'s host-internal bridge "
                            "(no uplink): give this network another bridge, or that one the "
                            "same uplink")
    if network.uplink is None:
        return MapRuleError(where, f"OVS bridge {network.bridge} has uplink {uplink} (network "
                            f"{other}): give this network the same uplink, or another bridge")
    return MapRuleError(where, f"OVS bridge {network.bridge} has uplink {uplink} (network "
                        f"{other}): one uplink per bridge")


def _check_derived_names(networks: Mapping[str, MappedNetwork], ovs: Mapping[str, OvsNetwork],
                         placed: Mapping[str, str], derived: Collection[str]) -> None:
    """An uplink's OVS bridge is a device of its own: not a device the map uses otherwise (a
    NIC, a bond, a Linux bridge, macvtap's NIC, OVN's integration bridge), nor, when vifplug
    names it, another network's named bridge or the derived bridge of another uplink."""
    others = _other_devices(networks)
    named = {n.bridge: name for name, n in ovs.items() if n.bridge_given}
    uplink_of: dict[str, str] = {}  # derived bridge -> its uplink
    for name, network in ovs.items():
        bridge = placed[name]
        if network.uplink is None:
            continue
        if network.bridge_given:
            if bridge in others:
                raise MapRuleError(("networks", name, "bridge"), f"{bridge} is {others[bridge]} "
                                   "already: an uplink's OVS bridge must be a device of its own")
            continue
        if name not in derived:
            continue
        uplink = network.uplink.name
        taken = others.get(bridge)
        if taken is None and bridge in named:
            taken = f"network {named[bridge]}'s OVS bridge"
        if taken is None and uplink_of.setdefault(bridge, uplink) != uplink:
            taken = f"the bridge of uplink {uplink_of[bridge]}"
        if taken is not None:
            raise MapRuleError(("networks", name, _key(network.uplink)), f"the OVS bridge "
                               f"vifplug names for uplink {uplink}, {bridge}, is {taken} "
                               "already: name this network's bridge with 'bridge'")


def _other_devices(networks: Mapping[str, MappedNetwork]) -> dict[str, str]:
    """Every device name the map uses other than as an ``ovs`` network's bridge."""
    found: dict[str, str] = {}
    for name, network in sorted(networks.items()):
        if isinstance(network, LegacyNetwork):
            found.setdefault(network.bridge, f"network {name}'s Linux bridge")
        elif isinstance(network, OvnNetwork):
            found.setdefault(network.bridge, f"OVN network {name}'s integration bridge")
        elif isinstance(network, DirectNetwork):
            for nic in network.nics:
                found.setdefault(nic, f"network {name}'s macvtap NIC")
        if isinstance(network, LegacyNetwork | OvsNetwork) and network.uplink is not None:
            for device in (network.uplink.name, *network.uplink.nics):
                found.setdefault(device, f"an uplink NIC or bond (network {name})")
    return found


def _bridge(name: str, members: list[OvsNetwork]) -> OvsBridge:
    uplink = next((n.uplink for n in members if n.uplink is not None), None)
    tagged = sorted({tag for n in members for tag in (n.trunk or ()) + _vlan(n)
                     + tuple(tag for tag, _, _ in _group_tags(n))})
    native = None
    if uplink is not None and any(_untagged(n) for n in members):
        native = _native_vlan(tagged)
    mtus = [n.mtu for n in members if n.mtu is not None]
    return OvsBridge(name=name, uplink=uplink, trunks=tuple(tagged) if uplink else (),
                     native_vlan=native, mtu=max(mtus) if mtus else None,
                     networks=tuple(sorted(definition_key(n) for n in members)),
                     named=any(n.bridge_given for n in members))


def _vlan(network: OvsNetwork) -> tuple[int, ...]:
    return (network.vlan,) if network.vlan is not None else ()


def _native_vlan(tagged: Collection[int]) -> int | None:
    """The bridge-internal VLAN for the untagged network: the highest id its other networks
    leave free (4094 unless taken), so that adding tagged networks rarely moves it."""
    free = (tag for tag in range(spec.VLAN_MAX, spec.VLAN_MIN - 1, -1) if tag not in tagged)
    return next(free, None)


# --- Linux bridges ----------------------------------------------------------------------------


def legacy_bridges(host_map: NetworkMap) -> tuple[LegacyBridge, ...]:
    """Each ``legacy`` network's Linux bridge, by network name, with the device it holds."""
    legacy = [n for _, n in sorted(host_map.every_definition().items())
              if isinstance(n, LegacyNetwork)]
    uplink_mtu: dict[str, int] = {}
    for network in legacy:
        if network.uplink is not None and network.mtu is not None:
            name = network.uplink.name
            uplink_mtu[name] = max(network.mtu, uplink_mtu.get(name, network.mtu))
    return tuple(LegacyBridge(n.bridge, definition_key(n), n.uplink, n.vlan, n.port, n.mtu,
                              uplink_mtu.get(n.uplink.name) if n.uplink else None)
                 for n in legacy)


def legacy_device_problems(host_map: NetworkMap, existing: Collection[str],
                           owned: Collection[str]) -> tuple[NetworkMapError, ...]:
    """What stops ``host apply`` building the map's Linux bridges, given the host's device names
    (``existing``) and those vifplug made (``owned``): a bridge, VLAN device or bond it would make
    that exists and is not vifplug's, and an uplink NIC that does not exist. Each error names
    the file, line and key; () when none."""
    problems: list[NetworkMapError] = []
    seen: set[str] = set()
    for bridge in legacy_bridges(host_map):
        where = ("networks", bridge.network)
        made = [(bridge.name, "bridge", "Linux bridge")]
        if bridge.vlan is not None and bridge.port is not None:
            made.append((bridge.port, "vlan", "VLAN device"))
        if isinstance(bridge.uplink, Bond):
            made.append((bridge.uplink.name, "bond", "bond"))
        for device, key, what in made:
            if device in existing and device not in owned and device not in seen:
                seen.add(device)
                problems.append(host_map.error((*where, key), f"{device} exists on this host "
                                               f"and is not vifplug's: vifplug makes this {what} "
                                               "itself; remove the device or rename it here"))
        nics = bridge.uplink.nics if bridge.uplink is not None else ()
        key = _key(bridge.uplink) if bridge.uplink is not None else "nic"
        for nic in nics:
            if nic not in existing and nic not in seen:
                seen.add(nic)
                problems.append(host_map.error((*where, key), f"NIC {nic} does not exist on "
                                               "this host"))
    return tuple(problems)


# --- one switch type per host ---------------------------------------------------------------


def one_switch_type_problem(host_map: NetworkMap) -> NetworkMapError | None:
    """The error ``host apply`` gives a map that mixes ``legacy`` networks with ``ovs``/``ovn``
    ones, naming the networks of each (a switch transition must move the whole host at once);
    None when the map has one type, or says ``allow_mixed = true`` (unsupported). ``direct``
    networks mix with either."""
    families: dict[str, list[str]] = {"legacy": [], "ovs": []}
    for name, network in sorted(host_map.every_definition().items()):
        family = _FAMILY.get(network.switch)
        if family is not None:
            families[family].append(name)
    if host_map.allow_mixed or not all(families.values()):
        return None
    return NetworkMapError(
        f"{host_map.path}: the map mixes switch types: legacy: {', '.join(families['legacy'])}; "
        f"ovs/ovn: {', '.join(families['ovs'])} (one switch type per host, so that a transition "
        "moves the whole host at once; allow_mixed = true at the top of the map allows it, "
        "unsupported)")
