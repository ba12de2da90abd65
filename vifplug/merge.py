"""The merge rule: which layer — interface, portgroup, network — supplies each attribute of a
guest's NIC on this host. Pure, and light (the migration hook imports it).

- Per-guest identities (``mac``, OVS ``interfaceid``, 802.1Qbg ``instanceid``) come only from the
  interface.
- Host-level parameters — 802.1Qbg ``managerid``/``typeid``/``typeidversion``, 802.1Qbh
  ``profileid``, ``vlan`` (an access tag or a trunk), ``bandwidth``, ``trust_guest_rx_filters``
  — come from the portgroup, else the network, else the interface.
- A parameter the interface asks for and the host layer that supplies it gives with a
  *different* value is an error naming both sources (libvirt's documented rule), unless that
  host layer says ``override = true``: then the host's value wins.

The *interface* layer is what the guest itself asked for: for ``render``/``explain`` its vif.json,
in the hook what vifplug's metadata entry recorded at render time (:func:`interface_layer` reads
that entry: ``ask-vlan``, ``ask-trunk``, ``ask-managerid``, ``ask-typeid``,
``ask-typeidversion``, ``ask-profileid``, ``ask-bandwidth``, ``ask-trust`` (``yes``/``no``: the
VIF's ``trust_guest_rx_filters``), ``portgroup``) plus the identities —
never what a previous host's map wrote into the live XML. The hook also passes an *arrived*
layer (what the interface carries on arrival, and the metadata's memory of it): the lowest
priority, never in conflict, so guests rendered before the rule existed (whose entries record no
request) migrate as they always did.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from vifplug.errors import VifError
from vifplug.netmap import (
    Bandwidth,
    DirectNetwork,
    MappedNetwork,
    NetworkMap,
    OvsNetwork,
    Portgroup,
    QbgShared,
    find_portgroup,
    parse_bandwidth,
    table_of,
)

__all__ = [
    "APPLIES",
    "ATTRIBUTES",
    "IDENTITIES",
    "REQUEST_KEYS",
    "Choice",
    "Layer",
    "MergeError",
    "Vlan",
    "host_layers",
    "interface_layer",
    "merge",
    "portgroup_note",
    "requests",
    "show",
]

#: Every attribute the rule decides, in the order they are shown.
ATTRIBUTES = ("mac", "interfaceid", "instanceid", "managerid", "typeid", "typeidversion",
              "profileid", "vlan", "bandwidth", "trust_guest_rx_filters")
#: The per-guest identities: from the interface only.
IDENTITIES = ("mac", "interfaceid", "instanceid")
#: The metadata attributes recording what the guest asked for at render time.
REQUEST_KEYS = ("ask-vlan", "ask-trunk", "ask-managerid", "ask-typeid", "ask-typeidversion",
                "ask-profileid", "ask-bandwidth", "ask-trust")
#: The attributes each local switch can give a guest's NIC (the others are not applied there).
APPLIES: Mapping[str, frozenset[str]] = {
    "legacy": frozenset({"mac", "bandwidth"}),
    "ovs": frozenset({"mac", "interfaceid", "vlan", "bandwidth"}),
    "ovn": frozenset({"mac", "interfaceid", "bandwidth"}),
    "direct": frozenset({"mac", "instanceid", "managerid", "typeid", "typeidversion",
                         "profileid", "bandwidth", "trust_guest_rx_filters"}),
}
_INTS = ("managerid", "typeid", "typeidversion")


class MergeError(VifError):
    """The interface and the host disagree on a parameter, or the guest names a portgroup this
    host's network lacks (the message names the interface, both sources and what to do)."""


class Vlan(NamedTuple):
    """A guest port's VLAN: an access tag, or the tags of a trunk."""

    tags: tuple[int, ...]
    trunk: bool = False

    def text(self) -> str:
        return f"trunk {','.join(map(str, self.tags))}" if self.trunk else str(self.tags[0])


#: An attribute's value: a string (MAC, ids, profile), an int (802.1Qbg ids), a Vlan, a
#: Bandwidth, a bool (trust).
Value = str | int | bool | Vlan | Bandwidth


class Layer(NamedTuple):
    """One layer's values, by attribute."""

    #: How explain names it: ``interface``, ``portgroup engineering``, ``network red``.
    source: str
    values: Mapping[str, Value]
    #: A host layer's ``override = true``: its values win over the interface's.
    override: bool = False
    #: How an error names it: ``portgroup engineering of network red``.
    described: str = ""
    #: Where each of its values is given (``networks.toml:12``), for the errors.
    places: Mapping[str, str] = {}


class Choice(NamedTuple):
    """What the rule chose for one attribute: its value and the layer it came from."""

    value: Value | None
    #: The layer's :attr:`Layer.source`; ``""`` when no layer gives the attribute.
    source: str = ""
    #: The interface's own, different value that an ``override = true`` host layer beat.
    overridden: Value | None = None


def text(value: Value | None) -> str:
    """A value as explain and the errors show it."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Vlan | Bandwidth):
        return value.text()
    return str(value)


def merge(interface: Layer, portgroup: Layer | None, network: Layer | None,
          arrived: Layer | None = None) -> dict[str, Choice]:
    """Every attribute of :data:`ATTRIBUTES` with its value and source (see the module doc).

    Raises :class:`MergeError` for a parameter the interface asks with a value different from
    the host layer's that supplies it, when that layer does not override."""
    mac = interface.values.get("mac", "?")
    chosen: dict[str, Choice] = {}
    for attribute in ATTRIBUTES:
        asked = interface.values.get(attribute)
        if attribute in IDENTITIES:
            chosen[attribute] = Choice(asked, interface.source if asked is not None else "")
            continue
        host = next((layer for layer in (portgroup, network)
                     if layer is not None and layer.values.get(attribute) is not None), None)
        if host is not None:
            given = host.values[attribute]
            differs = asked is not None and asked != given
            if differs and not host.override:
                place = host.places.get(attribute)
                raise MergeError(
                    f"interface {mac}: {attribute}: the interface asks {text(asked)}, "
                    f"{host.described or host.source}{f' ({place})' if place else ''} gives "
                    f"{text(given)}; set override = true there to let the host win")
            chosen[attribute] = Choice(given, host.source, asked if differs else None)
        elif asked is not None:
            chosen[attribute] = Choice(asked, interface.source)
        elif arrived is not None and arrived.values.get(attribute) is not None:
            chosen[attribute] = Choice(arrived.values[attribute], arrived.source)
        else:
            chosen[attribute] = Choice(None)
    return chosen


# --- the layers, from vifplug's metadata entry and this host's map ------------------------------


def interface_layer(entry: Mapping[str, str], source: str = "interface") -> Layer:
    """The interface layer from a metadata entry (:func:`vifplug.xml.metadata_entry`, or the
    one the hook reads): the identities and the ``ask-*`` requests. A request that does not
    parse (an entry edited by hand) is ignored, as a guest that asked nothing."""
    values: dict[str, Value] = {}
    for key in IDENTITIES:
        if entry.get(key):
            values[key] = entry[key].lower() if key == "mac" else entry[key]
    for key in _INTS:
        found = entry.get(f"ask-{key}", "")
        if found.isdigit():
            values[key] = int(found)
    if entry.get("ask-profileid"):
        values["profileid"] = entry["ask-profileid"]
    vlan = _vlan(entry.get("ask-vlan"), entry.get("ask-trunk"))
    if vlan is not None:
        values["vlan"] = vlan
    bandwidth = parse_bandwidth(entry.get("ask-bandwidth", ""))
    if bandwidth is not None:
        values["bandwidth"] = bandwidth
    trust = entry.get("ask-trust")
    if trust in ("yes", "no"):
        values["trust_guest_rx_filters"] = trust == "yes"
    return Layer(source, values)


def _vlan(access: str | None, trunk: str | None) -> Vlan | None:
    if access and access.isdigit():
        return Vlan((int(access),))
    if trunk:
        tags = trunk.split(",")
        if all(tag.isdigit() for tag in tags):
            return Vlan(tuple(map(int, tags)), trunk=True)
    return None


def requests(*, vlan: int | None = None, trunk: tuple[int, ...] | None = None,
             qbg: QbgShared | None = None, profile_id: str | None = None,
             bandwidth: Bandwidth | None = None, trust: bool | None = None) -> dict[str, str]:
    """The ``ask-*`` metadata attributes for what a guest asks (the reverse of
    :func:`interface_layer`)."""
    found: dict[str, str] = {}
    if vlan is not None:
        found["ask-vlan"] = str(vlan)
    elif trunk:
        found["ask-trunk"] = ",".join(map(str, trunk))
    if qbg is not None:
        found.update({"ask-managerid": str(qbg.manager_id), "ask-typeid": str(qbg.type_id),
                      "ask-typeidversion": str(qbg.type_id_version)})
    if profile_id is not None:
        found["ask-profileid"] = profile_id
    if bandwidth is not None:
        found["ask-bandwidth"] = bandwidth.text()
    if trust is not None:
        found["ask-trust"] = "yes" if trust else "no"
    return found


def host_layers(host_map: NetworkMap, network: MappedNetwork, mac: str,
                portgroup: str | None) -> tuple[Layer | None, Layer]:
    """The portgroup layer (the one the guest names, else the network's default; None when the
    network has no portgroups) and the network layer.

    Raises :class:`MergeError` when the guest names a portgroup the network lacks here."""
    where = table_of(network)  # an option's own table
    group: Portgroup | None = None
    if portgroup is not None:
        group = find_portgroup(network, portgroup)
        if group is None:
            have = (f"its portgroups: {', '.join(g.name for g in network.portgroups)}"
                    if network.portgroups else "it has no portgroups")
            raise MergeError(f"interface {mac}: network {network.name!r} has no portgroup "
                             f"{portgroup!r} on this host ({have}; {host_map.path})")
    elif network.default_portgroup is not None:
        group = find_portgroup(network, network.default_portgroup)
    group_layer = None
    if group is not None:
        at = (*where, "portgroups", group.name)
        values = _values(access=group.vlan, trunk=group.trunk, qbg=group.qbg,
                         profile=group.profile_id, bandwidth=group.bandwidth,
                         trust=group.trust_guest_rx_filters)
        group_layer = Layer(f"portgroup {group.name}", values, group.override,
                            f"portgroup {group.name} of network {network.name}",
                            _places(host_map, at, values, _GROUP_KEYS))
    access: int | None = None
    trunk: tuple[int, ...] | None = None
    qbg: QbgShared | None = None
    profile: str | None = None
    trust: bool | None = None
    if isinstance(network, OvsNetwork):
        access, trunk = network.access_tag, network.trunk
    if isinstance(network, DirectNetwork):
        qbg, profile, trust = network.qbg, network.qbh_profile_id, network.trust_guest_rx_filters
    values = _values(access=access, trunk=trunk, qbg=qbg, profile=profile,
                     bandwidth=network.bandwidth, trust=trust)
    network_layer = Layer(f"network {network.name}", values, network.override,
                          f"network {network.name}",
                          _places(host_map, where, values, _NETWORK_KEYS))
    return group_layer, network_layer


#: The map key each attribute is given by, in a portgroup and in a network (both of vlan's).
_GROUP_KEYS = {"vlan": (("vlan",), ("trunk",)), "managerid": (("manager_id",),),
               "typeid": (("type_id",),), "typeidversion": (("type_id_version",),),
               "profileid": (("profile_id",),), "bandwidth": (("bandwidth",),),
               "trust_guest_rx_filters": (("trust_guest_rx_filters",),)}
_NETWORK_KEYS = {**_GROUP_KEYS, "managerid": (("qbg", "manager_id"),),
                 "typeid": (("qbg", "type_id"),), "typeidversion": (("qbg", "type_id_version"),),
                 "profileid": (("qbh", "profile_id"),)}


def _places(host_map: NetworkMap, table: tuple[str, ...], values: Mapping[str, Value],
            keys: Mapping[str, tuple[tuple[str, ...], ...]]) -> dict[str, str]:
    """``file:line`` of the key giving each value (the table's line when no key does: an OVS
    network's native VLAN, which netlayout chose)."""
    table_place = host_map.place(table)
    places = {}
    for attribute in values:
        candidates = (host_map.place((*table, *key)) for key in keys[attribute])
        places[attribute] = next((place for place in candidates if place != table_place),
                                 table_place)
    return places


def _values(*, access: int | None, trunk: tuple[int, ...] | None, qbg: QbgShared | None,
            profile: str | None, bandwidth: Bandwidth | None,
            trust: bool | None) -> dict[str, Value]:
    values: dict[str, Value] = {}
    if access is not None:
        values["vlan"] = Vlan((access,))
    elif trunk:
        values["vlan"] = Vlan(trunk, trunk=True)
    if qbg is not None:
        values.update(managerid=qbg.manager_id, typeid=qbg.type_id,
                      typeidversion=qbg.type_id_version)
    if profile is not None:
        values["profileid"] = profile
    if bandwidth is not None:
        values["bandwidth"] = bandwidth
    if trust is not None:
        values["trust_guest_rx_filters"] = trust
    return values


def portgroup_note(network: MappedNetwork, named: str | None) -> str:
    """Which portgroup an interface gets and why, for a person (``""``: the network has none
    and the interface names none)."""
    if named is not None:
        return f"{named} (named by the interface)"
    if network.default_portgroup is not None:
        return f"{network.default_portgroup} (the network's default)"
    return ""


def show(chosen: Mapping[str, Choice], switch: str) -> list[tuple[str, str, str]]:
    """``(attribute, value, source)`` rows for a person: every attribute with a value, and
    whether this switch uses it."""
    rows = []
    for attribute in ATTRIBUTES:
        choice = chosen[attribute]
        if choice.value is None:
            continue
        source = choice.source
        if choice.overridden is not None:
            source += f" (override; the interface asks {text(choice.overridden)})"
        if attribute not in APPLIES[switch]:
            source += f" (not used by switch {switch!r})"
        rows.append((attribute, text(choice.value), source))
    return rows
