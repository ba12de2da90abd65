"""The libvirt qemu hook: rewrite an incoming guest's interfaces for this host's switch.

libvirt runs ``/etc/libvirt/hooks/qemu DOMAIN OP SUBOP EXTRA`` with the domain XML on stdin. For
``migrate begin`` and ``restore begin`` on the receiving host, :func:`main` prints the domain with
every vifplug interface rewritten for the local switch (../shared/HOOK_CONTRACT.md);
:func:`rewrite` is the pure part.

Which interfaces are vifplug's: those listed (by MAC) in the domain's ``<vifplug:interfaces>``
metadata, and those whose ``<source bridge>`` names a network of the local map (the legacy
convention bridge = network; they are added to the metadata so the next host knows them too).
Everything else in the document is left as it was.

The choice is deterministic: the result depends only on this host's map (and pools' state) and
the interface's own identity (MAC, network, OVS interfaceid, 802.1Qbg/Qbh parameters). A network
with a priority list (``[[networks.NAME.options]]``) gets the first option the interface can use
here and now (:func:`_usable`; the rules: :mod:`vifplug.options`), else one refusal naming
each option and why. Every identity the interface
arrives with (its virtualport's, which win, and the metadata's) is recorded in the metadata, with
what the rewrite gave it, so a hop through a host whose switch drops them (a Linux bridge has no
virtualport) does not change where the guest lands next (see :func:`rewrite` and docs/src/hook.md).

Light on purpose, as libvirt runs it synchronously on every incoming migration: the standard
library's ElementTree (expat), tomllib and the name rules; never lxml, pydantic or pyroute2.
"""

from __future__ import annotations

import os
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import IO, Any, NamedTuple

from vifplug.errors import VifplugError
from vifplug.merge import (
    Choice,
    Layer,
    MergeError,
    Vlan,
    host_layers,
    interface_layer,
    merge,
    portgroup_note,
)
from vifplug.netmap import (
    Bandwidth,
    DirectNetwork,
    LegacyNetwork,
    MappedNetwork,
    NetworkMap,
    NetworkMapError,
    OvnNetwork,
    OvsNetwork,
    load_network_map,
    parse_bandwidth,
)
from vifplug.spec import METADATA_NS, METADATA_PREFIX, POOLS_STATE

__all__ = ["MAX_DEPTH", "MAX_INPUT", "HookError", "PoolFull", "definition_of",
           "interface_networks", "main", "parse_domain", "rewrite", "state_chooser"]

#: The largest domain XML the hook accepts (a real one is a few KiB).
MAX_INPUT = 10 * 1024 * 1024
#: The deepest nesting accepted (a domain XML is about 6 levels deep).
MAX_DEPTH = 256
#: The operations whose stdout replaces the domain XML (on the receiving host).
REWRITE_OPS = frozenset({"migrate", "restore"})

_TAG = f"{{{METADATA_NS}}}interface"
_LIST_TAG = f"{{{METADATA_NS}}}interfaces"
#: The interface types that are a host device the guest owns, not a port of a switch: the hook
#: cannot rewrite them for the local switch (and would make nonsense of them), so it refuses,
#: except a failover pair's transient VF (``<teaming type='transient'>``), left as it is: QEMU
#: unplugs it for the migration and plugs it again on the destination.
_DEVICE_TYPES = {"hostdev": "an SR-IOV VF passed through (PCI address of the source host)",
                 "vdpa": "a vDPA device (the source host's /dev/vhost-vdpa-N)"}

#: Identity attributes the metadata keeps per interface (beside mac and network).
#: The metadata attribute naming the ``qbr`` of the hybrid path a switch transition moved the
#: interface onto (vifplug.guests): ``release`` removes that path; a rewrite drops the mark (the
#: interface leaves it, or arrives on a host where it does not exist).
HYBRID_ATTRIBUTE = "hybrid"
_HYBRID_NAME = re.compile(r"qbr[0-9a-z-]{11}")
_IDENTITY = ("interfaceid", "instanceid", "profileid", "managerid", "typeid", "typeidversion")
#: Which of them each ``<virtualport type>`` carries (an untyped one, or another type: any).
_PORT_KEYS: dict[str, tuple[str, ...]] = {
    "openvswitch": ("interfaceid",),
    "midonet": ("interfaceid",),
    "802.1Qbg": ("instanceid", "managerid", "typeid", "typeidversion"),
    "802.1Qbh": ("profileid",),
}

Element = ET.Element


class HookError(VifplugError):
    """The hook cannot accept this domain (bad XML, or a network this host lacks)."""


class _Builder(ET.TreeBuilder):
    """A tree builder that refuses what a domain XML never has: a DOCTYPE (and with it every
    entity declaration: billion laughs, external entities), and absurd nesting."""

    def __init__(self) -> None:
        super().__init__(insert_comments=True, insert_pis=True)
        self.depth = 0

    def doctype(self, name: str, pubid: str | None, system: str | None) -> None:
        raise HookError("domain XML has a DOCTYPE; refused")

    def start(self, tag: str, attrs: dict[str, str]) -> Element:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise HookError(f"domain XML is nested more than {MAX_DEPTH} levels deep; refused")
        return super().start(tag, attrs)

    def end(self, tag: str) -> Element:
        self.depth -= 1
        return super().end(tag)


def parse_domain(data: str | bytes) -> Element:
    """Parse a domain XML, refusing anything libvirt would never send: over 10 MiB, not UTF-8,
    not well-formed, a DOCTYPE or entity declarations, a root other than ``<domain>``.

    The text is always read as UTF-8, whatever its XML declaration claims (libvirt writes
    UTF-8; a declared ISO-8859-1 or UTF-7 would otherwise change the text or hide markup), and
    no entity is ever expanded nor anything fetched."""
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if len(raw) > MAX_INPUT:
        raise HookError(f"domain XML is larger than {MAX_INPUT // (1024 * 1024)} MiB")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HookError(f"domain XML is not UTF-8 (byte {exc.start})") from None
    nul = raw.find(b"\x00")
    if nul >= 0:  # never in XML; UTF-16 text is full of them
        raise HookError(f"domain XML contains NUL bytes (byte {nul}); expected UTF-8 XML")
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        raise HookError("domain XML has a DOCTYPE or entity declarations; refused")
    # S314: the input is untrusted, hence the checks above and in _Builder (no DOCTYPE, so no
    # entity is ever declared; expat expands none else, fetches nothing, and caps amplification)
    parser = ET.XMLParser(target=_Builder(), encoding="utf-8")  # noqa: S314
    try:
        parser.feed(raw)
        root: Element = parser.close()
    except ET.ParseError as exc:
        raise HookError(f"domain XML is not well-formed: {' '.join(str(exc).split())}") from None
    if root.tag != "domain":
        raise HookError(f"expected a <domain> document, got <{root.tag}>")
    return root


class Rewritten(NamedTuple):
    """One interface the hook rewrote (for the log)."""

    mac: str
    network: str
    switch: str
    detail: str
    #: What the merge rule chose for each attribute, and from which layer (vifplug.merge).
    chosen: Mapping[str, Choice] = {}
    #: The portgroup it got, and why (``""``: none).
    portgroup: str = ""
    #: The index of the option of the network's priority list it got (None: the network has
    #: one definition), how many options the list has, and why each earlier one was skipped.
    option: int | None = None
    options: int = 1
    skipped: tuple[str, ...] = ()


#: Picks the NIC of a pooled ``direct`` network for an interface (by MAC), or raises
#: :class:`PoolFull` (the next option of a priority list is tried): the hook's allocates it in
#: the pool state (vifplug.pools), :func:`state_chooser`'s previews that; without one, the
#: rewrite keeps the NIC the interface has when it is in the pool, else takes the pool's first.
PoolChooser = Callable[[DirectNetwork, str], str]


def rewrite(domain_xml: str | bytes, host_map: NetworkMap, *,
            log: Callable[[Rewritten], None] | None = None,
            networks: Collection[str] | None = None,
            pool: PoolChooser | None = None) -> str:
    """The domain XML with every vifplug interface rewritten for ``host_map``'s switches.

    Each interface's identity (OVS ``interfaceid``, 802.1Qbg ``instanceid``, ``managerid``,
    ``typeid``, ``typeidversion``, 802.1Qbh ``profileid``) is what its metadata entry remembers,
    overridden key by key by what its ``<virtualport><parameters>`` carries on arrival (newer:
    libvirt may have generated it on the host the guest comes from). The rewrite uses that, and
    the entry then records it all, overridden by what the rewritten virtualport carries (a
    host-level parameter this host's map supplied). So the metadata holds the latest value of
    every identity the interface ever carried, a hop through a switch that drops the virtualport
    loses none of it, and a second rewrite on the same host changes nothing.

    Which layer supplies each attribute (the interface, the portgroup it names or the network's
    default portgroup, the network) is :func:`vifplug.merge.merge`'s rule; what the interface
    itself asks is what its metadata entry recorded at render time (``portgroup``, ``ask-*``),
    and what it carries on arrival is the last resort (guests rendered before the rule).

    ``networks``: rewrite only the interfaces that belong to these networks (by the same rules)
    and leave every other one as it is, even one whose network ``host_map`` lacks; None (the
    hook): every vifplug interface. vifplug.guests uses it to move only the guests' interfaces
    on the networks whose switch changes.

    Raises :class:`HookError` for input the hook refuses, for an interface whose network (or
    named portgroup) this host does not have (naming MAC, network and the map's path), and for
    a parameter the interface and this host give differently (see :mod:`vifplug.merge`).
    """
    root = parse_domain(domain_xml)
    listed = _metadata(root)
    by_mac = {entry.get("mac", "").lower(): entry for entry in listed}
    for iface in root.iterfind("devices/interface"):
        mac_el = iface.find("mac")
        mac = (mac_el.get("address") or "").lower() if mac_el is not None else ""
        entry = by_mac.get(mac)
        if entry is None:
            source = iface.find("source")
            bridge = source.get("bridge") if source is not None else None
            if not mac or iface.get("type") != "bridge" or bridge is None \
                    or host_map.networks.get(bridge) is None:
                continue  # not vifplug's: leave it alone
            if networks is not None and bridge not in networks:
                continue  # vifplug's, on a network not asked for: leave it alone
            entry = _add_entry(root, mac, bridge)
            by_mac[mac] = entry
        name = entry.get("network", "")
        if networks is not None and name not in networks:
            continue
        teaming = iface.find("teaming")
        if iface.get("type") == "hostdev" and teaming is not None \
                and teaming.get("type") == "transient":
            continue  # a failover pair's VF: QEMU plugs it again here, as its definition says
        if iface.get("type") in _DEVICE_TYPES:
            raise HookError(f"interface {mac}: a type={iface.get('type')!r} NIC is "
                            f"{_DEVICE_TYPES[iface.get('type') or '']}, which the hook cannot "
                            f"move to network {name!r}'s switch on this host; refused")
        definitions = host_map.definitions(name)
        if not definitions:
            raise HookError(f"interface {mac}: network {name!r} is not defined on this host "
                            f"({host_map.path})")
        arrived = _identity(iface, entry)
        skipped: list[str] = []
        for option in definitions:
            try:
                network, chosen = _usable(iface, entry, option, arrived, host_map, pool=pool)
                break
            except HookError as exc:
                if option.option is None:
                    raise  # a single definition: its refusal, as it always was
                skipped.append(_skip_line(option, mac, exc))
        else:
            raise HookError(f"interface {mac}: network {name!r}: no connection option is "
                            f"usable on this host ({host_map.path}): {'; '.join(skipped)}; "
                            "refused")
        detail = _REWRITERS[network.switch](iface, network, chosen)
        # Remember every identity the interface arrived with (libvirt may have generated one on
        # the last host: an OVS interfaceid, an 802.1Qbg instanceid), then what it carries now
        # (this host's map may have supplied host-level parameters), so that a hop through a
        # switch that drops the virtualport loses nothing and rewriting again changes nothing.
        _remember(entry, {**arrived, **_carried(iface)})
        entry.attrib.pop(HYBRID_ATTRIBUTE, None)
        if log is not None:
            log(Rewritten(mac, name, network.switch, detail, chosen,
                          portgroup_note(network, entry.get("portgroup") or None),
                          network.option, len(definitions), tuple(skipped)))
    return _serialise(root)


class PoolFull(HookError):
    """The pool of a ``direct`` network has no NIC for this interface (a
    :data:`PoolChooser`'s refusal: the option is not usable, the next one may be)."""


def _usable(iface: Element, entry: Element, network: MappedNetwork, arrived: dict[str, str],
            host_map: NetworkMap, *,
            pool: PoolChooser | None) -> tuple[MappedNetwork, dict[str, Choice]]:
    """``network`` (one definition of the interface's network, its pool NIC chosen) and the
    merge rule's choice, when the interface can use it here and now (vifplug.options); else
    a :class:`HookError` saying why not. Depends on the map, the pools' state (``pool``), the
    interface's identities and requests, never on what its XML says of the last host."""
    name = network.name
    mac = (entry.get("mac") or "").lower()
    port = iface.find("port")
    if port is not None and port.get("isolated") == "yes" and network.switch != "legacy":
        # the guest asked for isolation (a property of the guest, like its identities)
        raise HookError(f"interface {mac}: <port isolated='yes'/> needs a Linux bridge, and "
                        f"network {name!r} is a {network.switch} switch on this host "
                        "(libvirt refuses isolation elsewhere, and dropping it would let "
                        "the guest reach other isolated guests); refused")
    if isinstance(network, OvnNetwork) and "interfaceid" not in arrived:
        raise HookError(f"interface {mac}: network {name!r} is OVN logical switch "
                        f"{network.logical_switch!r} on this host, and the interface "
                        "carries no port identity (no OVS interfaceid in its virtualport "
                        "or vifplug metadata) to bind to a logical switch port; refused")
    try:
        group, host = host_layers(host_map, network, mac, entry.get("portgroup") or None)
        own: dict[str, str] = {**entry.attrib, "mac": mac}
        own.update({key: arrived[key] for key in ("interfaceid", "instanceid")
                    if key in arrived})
        chosen = merge(interface_layer(own), group, host, _arrived_layer(iface, arrived))
    except MergeError as exc:
        raise HookError(str(exc)) from None
    if network.option is not None and isinstance(network, DirectNetwork) \
            and _profile(chosen) == "802.1Qbg" and chosen["managerid"].source != ARRIVED \
            and "instanceid" not in arrived:
        raise HookError(f"interface {mac}: 802.1Qbg needs the interface's instanceid (its VSI "
                        "instance), and it carries none; refused")
    if isinstance(network, DirectNetwork) and network.pool:
        network = network._replace(interface=_pool_nic(iface, network, mac, pool))
    return network, chosen


def _skip_line(network: MappedNetwork, mac: str, exc: HookError) -> str:
    """``options[0] (what it is): why not`` for a refusal naming the interface."""
    reason = str(exc).removeprefix(f"interface {mac}: ").removesuffix("; refused")
    return f"options[{network.option}] ({network.describe()}): {reason}"


def _serialise(root: Element) -> str:
    """The document as text. ElementTree declares namespaces on the root element and names
    their prefixes itself; vifplug's keeps its own, and the rest are only renamed (the same
    namespace URIs: the same document to libvirt)."""
    ET.register_namespace(METADATA_PREFIX, METADATA_NS)
    return ET.tostring(root, encoding="unicode")


def interface_networks(root: Element) -> Iterator[tuple[str, str, Element]]:
    """Each interface of a domain that vifplug's metadata lists (by MAC), with its network:
    (MAC, network, the ``<interface>``). After :func:`rewrite`, that is every vifplug
    interface."""
    networks = {entry.get("mac", "").lower(): entry.get("network", "")
                for entry in _metadata(root)}
    for iface in root.iterfind("devices/interface"):
        mac_el = iface.find("mac")
        mac = (mac_el.get("address") or "").lower() if mac_el is not None else ""
        if mac in networks:
            yield mac, networks[mac], iface


def definition_of(host_map: NetworkMap, name: str, iface: Element) -> MappedNetwork | None:
    """The definition of network ``name`` an interface rewritten for ``host_map`` is on: its
    single one, or the option of its priority list whose switch and device the interface's
    type and source show (the first such); None when none matches (or the map lacks it)."""
    definitions = host_map.definitions(name)
    if len(definitions) <= 1:
        return definitions[0] if definitions else None
    source = iface.find("source")
    if source is None:
        return None
    port = iface.find("virtualport")
    ovs = port is not None and port.get("type") == "openvswitch"
    kind = iface.get("type")
    for network in definitions:
        if kind == "direct" and isinstance(network, DirectNetwork):
            if source.get("dev") in network.nics and source.get("mode", "vepa") == network.mode:
                return network
        elif kind == "bridge" and isinstance(network, LegacyNetwork | OvsNetwork | OvnNetwork) \
                and source.get("bridge") == network.bridge \
                and ovs == (not isinstance(network, LegacyNetwork)):
            return network
    return None


# --- metadata -----------------------------------------------------------------------------------


def _metadata(root: Element) -> list[Element]:
    found = root.find(f"metadata/{_LIST_TAG}")
    return [] if found is None else list(found.iterfind(_TAG))


def _add_entry(root: Element, mac: str, network: str) -> Element:
    metadata = root.find("metadata")
    if metadata is None:
        metadata = ET.Element("metadata")
        # where libvirt writes it: after name, uuid, genid, title and description
        children = list(root)
        anchor = next((children.index(e) + 1 for e in reversed(children)
                       if e.tag in ("name", "uuid", "genid", "title", "description")), 0)
        root.insert(anchor, metadata)
    listing = metadata.find(_LIST_TAG)
    if listing is None:
        listing = ET.SubElement(metadata, _LIST_TAG)
    return ET.SubElement(listing, _TAG, mac=mac, network=network)


def _identity(iface: Element, entry: Element) -> dict[str, str]:
    """The identity the interface arrives with: what the metadata remembers, overridden key by
    key by what its virtualport carries (newer: set, or generated by libvirt, on the host it
    comes from)."""
    identity = {key: value for key in _IDENTITY if (value := entry.get(key))}
    identity.update(_carried(iface))
    return identity


def _carried(iface: Element) -> dict[str, str]:
    """The identity parameters the interface's ``<virtualport>`` carries, each only from a
    virtualport type that has it (or an untyped one): an OVS ``profileid`` names an OVS port
    profile, not an 802.1Qbh one."""
    port = iface.find("virtualport")
    params = port.find("parameters") if port is not None else None
    if port is None or params is None:
        return {}
    keys = _PORT_KEYS.get(port.get("type") or "", _IDENTITY)
    return {key: value for key in keys if (value := params.get(key))}


#: The source :func:`_arrived_layer` gives its values (the merge rule's last resort).
ARRIVED = "interface (as it arrived)"


def _arrived_layer(iface: Element, identity: dict[str, str]) -> Layer:
    """What the interface carries on arrival, and the metadata's memory of it: the last resort
    for host-level parameters no layer of this host supplies and the guest did not ask for (so
    guests rendered before the merge rule, whose metadata records no request, keep migrating as
    they did): a trunk ``<vlan>``, the port profile, the ``<bandwidth>``, trustGuestRxFilters."""
    values: dict[str, Any] = {}
    qbg = [identity.get(key, "") for key in ("managerid", "typeid", "typeidversion")]
    if all(value.isdigit() for value in qbg):
        values.update(zip(("managerid", "typeid", "typeidversion"), map(int, qbg), strict=True))
    if identity.get("profileid"):
        values["profileid"] = identity["profileid"]
    trunk = iface.find("vlan[@trunk='yes']")
    tags = [tag.get("id", "") for tag in trunk.findall("tag")] if trunk is not None else []
    if tags and all(tag.isdigit() for tag in tags):
        values["vlan"] = Vlan(tuple(map(int, tags)), trunk=True)
    bandwidth = _live_bandwidth(iface)
    if bandwidth is not None:
        values["bandwidth"] = bandwidth
    trust = iface.get("trustGuestRxFilters")
    if trust in ("yes", "no"):
        values["trust_guest_rx_filters"] = trust == "yes"
    return Layer(ARRIVED, values)


def _live_bandwidth(iface: Element) -> Any:
    element = iface.find("bandwidth")
    if element is None:
        return None
    parts = []
    for child in element:
        if child.tag not in ("inbound", "outbound") or set(child.attrib) - {
                "average", "peak", "burst"}:
            return None  # floor, or something newer: not ours to restate (left as it is)
        rate = "/".join(child.get(key, "") for key in ("average", "peak", "burst"))
        parts.append(f"{child.tag}={rate.rstrip('/')}")
    return parse_bandwidth(" ".join(parts))


def _remember(entry: Element, identity: dict[str, str]) -> None:
    for key in _IDENTITY:
        if key in identity:
            entry.set(key, identity[key])


# --- rewriting per local switch -------------------------------------------------------------------


def _set_source(iface: Element, **attrib: str) -> None:
    old = iface.find("source")
    new = ET.Element("source", attrib)
    children = list(iface)
    if old is not None:
        new.tail = old.tail
        position = children.index(old)
        iface.remove(old)
        iface.insert(position, new)
    else:
        mac = iface.find("mac")
        iface.insert(children.index(mac) + 1 if mac is not None else 0, new)


def _drop(iface: Element, *tags: str) -> None:
    for tag in tags:
        for element in iface.findall(tag):
            iface.remove(element)


def _after_source(iface: Element, element: Element) -> None:
    source = iface.find("source")
    if source is None:
        iface.append(element)
        return
    element.tail = source.tail  # keep the document's indentation
    iface.insert(list(iface).index(source) + 1, element)


def _unmanaged_target_only_for_ethernet(iface: Element) -> None:
    target = iface.find("target")
    if target is not None and "managed" in target.attrib:
        del target.attrib["managed"]  # libvirt accepts managed='no' on type='ethernet' only


def _value(chosen: Mapping[str, Choice], key: str) -> Any:
    return chosen[key].value if key in chosen else None


def _rank(source: str) -> int:
    """A layer's precedence for a choice between attributes: this host's, then the
    interface's own request, then what it arrived with."""
    return 0 if source.startswith(("portgroup ", "network ")) else 2 if source == ARRIVED else 1


def _common(iface: Element, chosen: Mapping[str, Choice], *, direct: bool = False) -> str:
    """What every switch sets alike: the ``<bandwidth>`` the rule chose (one the interface
    arrived with stays as it is), and trustGuestRxFilters (macvtap only: libvirt refuses it on
    other types)."""
    done = ""
    bandwidth = chosen.get("bandwidth")
    if bandwidth is not None and isinstance(bandwidth.value, Bandwidth) \
            and bandwidth.source != ARRIVED:
        old = iface.find("bandwidth")
        new = ET.Element("bandwidth")
        for direction in ("inbound", "outbound"):
            rate = getattr(bandwidth.value, direction)
            if rate is not None:
                attrib = {"average": str(rate.average)}
                attrib.update({key: str(getattr(rate, key)) for key in ("peak", "burst")
                               if getattr(rate, key) is not None})
                ET.SubElement(new, direction, attrib)
        if old is not None:
            new.tail = old.tail
            position = list(iface).index(old)
            iface.remove(old)
            iface.insert(position, new)
        else:
            _after_source(iface, new)
        done += f", bandwidth {bandwidth.value.text()}"
    trust = _value(chosen, "trust_guest_rx_filters")
    if not direct:
        iface.attrib.pop("trustGuestRxFilters", None)
    elif trust is not None:
        iface.set("trustGuestRxFilters", "yes" if trust else "no")
    return done


def _to_legacy(iface: Element, network: MappedNetwork, chosen: Mapping[str, Choice]) -> str:
    assert isinstance(network, LegacyNetwork)  # noqa: S101 - dispatched by switch
    iface.set("type", "bridge")
    _set_source(iface, bridge=network.bridge)
    _drop(iface, "virtualport", "vlan")
    _unmanaged_target_only_for_ethernet(iface)
    return f"Linux bridge {network.bridge}{_common(iface, chosen)}"


def _to_ovs(iface: Element, network: MappedNetwork, chosen: Mapping[str, Choice]) -> str:
    """The VLAN the rule chose: the portgroup's, else the network's (its vlan, trunk, or the
    bridge's native VLAN: netlayout), else the interface's request, else a trunk it arrived
    with (a trunk is what the guest sees)."""
    assert isinstance(network, OvsNetwork)  # noqa: S101 - dispatched by switch
    iface.set("type", "bridge")
    _set_source(iface, bridge=network.bridge)
    _drop(iface, "virtualport", "vlan")
    _unmanaged_target_only_for_ethernet(iface)
    vlan: Element | None = None
    chosen_vlan: Vlan | None = _value(chosen, "vlan")
    if chosen_vlan is not None:
        vlan = ET.Element("vlan", trunk="yes") if chosen_vlan.trunk else ET.Element("vlan")
        for tag in chosen_vlan.tags:
            ET.SubElement(vlan, "tag", id=str(tag))
    port = ET.Element("virtualport", type="openvswitch")
    interfaceid = _value(chosen, "interfaceid")
    if interfaceid is not None:
        ET.SubElement(port, "parameters", interfaceid=interfaceid)
    _after_source(iface, port)
    if vlan is not None:
        _after_source(iface, vlan)
    shaped = _common(iface, chosen)
    tags = vlan.findall("tag") if vlan is not None else []
    what = ("" if vlan is None else
            f", trunk {','.join(t.get('id', '') for t in tags)}" if vlan.get("trunk") == "yes"
            else f", vlan {tags[0].get('id')}")
    return f"OVS bridge {network.bridge}{what}{shaped}"


def _to_ovn(iface: Element, network: MappedNetwork, chosen: Mapping[str, Choice]) -> str:
    """The integration bridge with the guest's interfaceid (the logical switch port's name, which
    ovn-controller binds); never a ``<vlan>``: OVN, not the local port, carries the network.
    :func:`rewrite` has refused an interface without an interfaceid."""
    assert isinstance(network, OvnNetwork)  # noqa: S101 - dispatched by switch
    iface.set("type", "bridge")
    _set_source(iface, bridge=network.bridge)
    _drop(iface, "virtualport", "vlan")
    _unmanaged_target_only_for_ethernet(iface)
    port = ET.Element("virtualport", type="openvswitch")
    interfaceid: str = _value(chosen, "interfaceid")
    ET.SubElement(port, "parameters", interfaceid=interfaceid)
    _after_source(iface, port)
    return (f"OVN logical switch {network.logical_switch} on {network.bridge}, port "
            f"{interfaceid}{_common(iface, chosen)}")


def _to_direct(iface: Element, network: MappedNetwork, chosen: Mapping[str, Choice]) -> str:
    """The port profile's type is the host's when this host (portgroup or network) gives one,
    else the interface's; each parameter is the rule's choice; 802.1Qbg's instanceid is always
    the interface's."""
    assert isinstance(network, DirectNetwork)  # noqa: S101 - dispatched by switch
    iface.set("type", "direct")
    _set_source(iface, dev=network.interface, mode=network.mode)
    _drop(iface, "virtualport", "vlan")
    _unmanaged_target_only_for_ethernet(iface)
    qbg_keys = ("managerid", "typeid", "typeidversion")
    kind = _profile(chosen)
    port: Element | None = None
    if kind == "802.1Qbh":
        port = ET.Element("virtualport", type="802.1Qbh")
        ET.SubElement(port, "parameters", profileid=_value(chosen, "profileid"))
    elif kind == "802.1Qbg":
        params = {key: str(_value(chosen, key)) for key in qbg_keys}
        instanceid = _value(chosen, "instanceid")
        if instanceid is not None:
            params["instanceid"] = instanceid
        port = ET.Element("virtualport", type="802.1Qbg")
        ET.SubElement(port, "parameters", params)
    shaped = _common(iface, chosen, direct=True)
    if port is not None:
        _after_source(iface, port)
        return f"macvtap on {network.interface} ({network.mode}), {port.get('type')}{shaped}"
    return f"macvtap on {network.interface} ({network.mode}){shaped}"


def _profile(chosen: Mapping[str, Choice]) -> str | None:
    """The port profile type a macvtap gets: that of the highest layer giving one (this host,
    portgroup or network; then the guest's own request; then what it arrived with), 802.1Qbh
    first at the same layer; None: no profile."""
    has_qbg = all(_value(chosen, key) is not None
                  for key in ("managerid", "typeid", "typeidversion"))
    if _value(chosen, "profileid") is not None and (
            not has_qbg or _rank(chosen["profileid"].source) <= _rank(chosen["managerid"].source)):
        return "802.1Qbh"
    return "802.1Qbg" if has_qbg else None


_REWRITERS: dict[str, Callable[[Element, MappedNetwork, Mapping[str, Choice]], str]] = {
    "legacy": _to_legacy,
    "ovs": _to_ovs,
    "ovn": _to_ovn,
    "direct": _to_direct,
}


# --- the hook program ---------------------------------------------------------------------------


def _pool_nic(iface: Element, network: DirectNetwork, mac: str,
              pool: PoolChooser | None) -> str:
    if pool is not None:
        return pool(network, mac)
    source = iface.find("source")
    dev = source.get("dev") if source is not None else None
    return dev if dev in network.pool else network.pool[0]


def _pool_chooser(domain: str) -> PoolChooser:
    """Allocate in the pool state file for ``domain`` (a refusal when the pool is full)."""
    from vifplug.pools import Holder, PoolExhausted, allocate

    def choose(network: DirectNetwork, mac: str) -> str:
        try:
            return allocate(network, Holder(domain, mac))
        except PoolExhausted as exc:
            raise PoolFull(f"interface {mac}: {exc}; refused") from None
    return choose


def state_chooser(domain: str, path: str | None = None, *, problems: list[str] | None = None,
                  state: Any = None) -> PoolChooser:
    """A preview of the hook's choice of pool NICs for ``domain``: on a copy of the pools'
    state file (``path``, else ``$VIFPLUG_POOLS``, else the default), read once; nothing is
    written. A pool with no NIC for the interface refuses it (:class:`PoolFull`: the next
    option of a priority list is tried) — or, with ``problems`` and a network's single
    definition, is a line there and its first NIC stands in (``hook check`` goes on)."""
    from vifplug.pools import Holder, PoolExhausted, load, state_path

    if state is None:  # else: a PoolState shared by several calls (one preview)
        state = load(state_path(path))

    def choose(network: DirectNetwork, mac: str) -> str:
        try:
            return str(state.choose(network, Holder(domain, mac)))
        except PoolExhausted as exc:
            if problems is not None and network.option is None:
                problems.append(f"interface {mac}: {exc}")
                return network.pool[0]
            raise PoolFull(f"interface {mac}: {exc}; refused") from None
    return choose


def _has_pools(host_map: NetworkMap) -> bool:
    return any(isinstance(n, DirectNetwork) and n.pool
               for n in host_map.every_definition().values())


def _release(domain: str) -> None:
    """The guest stopped here (or left by migration): free the pool NICs it held."""
    from vifplug.pools import release

    release(domain)


def hybrid_paths(domain_xml: bytes) -> list[str]:
    """The ``qbr`` of each hybrid path a switch transition moved the domain's interfaces onto
    (vifplug's metadata ``hybrid`` marks); names that are not a ``qbr`` vifplug makes are
    ignored."""
    if f"{HYBRID_ATTRIBUTE}=".encode() not in domain_xml:
        return []
    return [qbr for entry in _metadata(parse_domain(domain_xml))
            if _HYBRID_NAME.fullmatch(qbr := entry.get(HYBRID_ATTRIBUTE, ""))]


def _remove_hybrid_paths(domain: str, domain_xml: bytes, err: Any) -> None:
    """The guest stopped here, or left: remove the hybrid paths (qbr, qvb/qvo and qvo's OVS
    port) a switch transition made for it — each device only if it exists, a qbr only when
    nothing but its qvb is on it — in one ``ovs-vsctl`` and one ``ip -batch``. Problems are
    said on ``err``; libvirt's release goes on."""
    import subprocess

    ports: list[str] = []
    links: list[str] = []
    for qbr in hybrid_paths(domain_xml):
        qvb, qvo = "qvb" + qbr[3:], "qvo" + qbr[3:]
        brif = f"/sys/class/net/{qbr}/brif"
        held = set(os.listdir(brif)) if os.path.isdir(brif) else set()
        if held - {qvb}:
            print(_one_line(f"vifplug: domain {domain!r}: {qbr} holds {', '.join(sorted(held))}"
                            ": left as it is"), file=err)
            continue
        ports.append(qvo)
        links += [name for name in (qvb, qbr) if os.path.exists(f"/sys/class/net/{name}")]
    commands: list[tuple[list[str], str | None]] = []
    if ports:
        commands.append((["ovs-vsctl", "--timeout=5",
                          *[word for qvo in ports for word in ("--", "--if-exists", "del-port",
                                                               qvo)]], None))
    if links:
        commands.append((["ip", "-force", "-batch", "-"],
                         "".join(f"link delete dev {name}\n" for name in links)))
    for command, given in commands:
        try:
            done = subprocess.run(command, input=given, capture_output=True, text=True,
                                  timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            print(_one_line(f"vifplug: domain {domain!r}: {command[0]}: {exc}"), file=err)
            continue
        if done.returncode != 0:
            print(_one_line(f"vifplug: domain {domain!r}: {' '.join(command)}: "
                            f"{done.stderr.strip()}"), file=err)


def _refuse_early(result: str, host_map: NetworkMap) -> None:
    """The device checks of ``vifplug hook check`` on the rewritten domain: a HookError with
    the first problem (the migration then fails before its memory copy, not after it)."""
    from vifplug.preflight import device_problems

    problems = device_problems(result, host_map)
    if problems:
        more = (f" (and {len(problems) - 1} more: see `vifplug hook check`)"
                if len(problems) > 1 else "")
        raise HookError(f"{problems[0]}{more}; refused before the migration copies memory "
                        f"(strict = false in {host_map.path} skips these checks)")


def _one_line(text: str) -> str:
    """``text`` with every character that would break the line or the terminal (a newline in
    a MAC read from the XML, an escape sequence) written as its Python escape: libvirt shows
    the hook's stderr, and the refusal is one line."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def _binary(stream: Any) -> IO[bytes]:
    return stream.buffer if hasattr(stream, "buffer") else stream  # type: ignore[no-any-return]


def _write(stream: Any, text: str) -> None:
    """To a binary stream (or a text stream's buffer) as UTF-8 whatever the locale (libvirt
    runs hooks with LC_ALL=C); to a text stream without a buffer (a StringIO) as text."""
    target = getattr(stream, "buffer", stream)
    try:
        target.write(text.encode("utf-8"))
    except TypeError:
        target.write(text)
    target.flush()


def _syslog(entry: Rewritten) -> None:
    if not os.path.exists("/dev/log"):
        return
    import syslog

    syslog.openlog("vifplug-hook", syslog.LOG_PID, syslog.LOG_DAEMON)
    syslog.syslog(syslog.LOG_INFO, f"interface {entry.mac}: network {entry.network!r} → "
                  f"{entry.detail}")


def main(argv: Sequence[str], stdin: Any = None, stdout: Any = None, stderr: Any = None,
         *, networks: str | None = None) -> int:
    """Run as libvirt runs the hook: ``argv`` is ``[DOMAIN, OP, SUBOP, EXTRA...]``.

    For ``migrate begin`` / ``restore begin``: the rewritten domain on stdout, exit 0; on any
    refusal, nothing on stdout, one line on stderr, exit 1. Any other operation: exit 0, no
    output. Never calls back into libvirt.
    """
    err = stderr if stderr is not None else sys.stderr
    if len(argv) >= 3 and argv[1] == "release" and argv[2] == "end":
        # the guest stopped here, or left by migration: remove the hybrid paths a switch
        # transition made for it, free its pool NICs (if pools are used)
        try:
            data = _binary(stdin if stdin is not None else sys.stdin).read(MAX_INPUT + 1)
            if isinstance(data, str):
                data = data.encode("utf-8")
            _remove_hybrid_paths(argv[0], data, err)
        except Exception as exc:  # never fail libvirt's release: say it and go on
            print(_one_line(f"vifplug: domain {argv[0]!r}: cannot remove its hybrid paths: "
                            f"{exc}"), file=err)
        if os.path.exists(os.environ.get("VIFPLUG_POOLS") or POOLS_STATE):
            try:
                _release(argv[0])
            except Exception as exc:  # never fail libvirt's release: say it and go on
                print(_one_line(f"vifplug: domain {argv[0]!r}: cannot free its pool NICs: "
                                f"{exc}"), file=err)
        return 0
    if len(argv) < 3 or argv[1] not in REWRITE_OPS or argv[2] != "begin":
        return 0
    domain = argv[0]
    try:
        host_map = load_network_map(networks)
        data = _binary(stdin if stdin is not None else sys.stdin).read(MAX_INPUT + 1)
        if isinstance(data, str):
            data = data.encode("utf-8")
        chooser = _pool_chooser(domain) if _has_pools(host_map) else None
        try:
            result = rewrite(data, host_map, log=_syslog, pool=chooser)
            if argv[1] == "migrate" and host_map.strict:
                _refuse_early(result, host_map)
        except BaseException:
            if chooser is not None:
                _release(domain)  # refused: the guest will not run here
            raise
    except (HookError, NetworkMapError) as exc:
        print(f"vifplug: {_one_line(str(exc))}", file=err)
        return 1
    except Exception as exc:
        print(_one_line(f"vifplug: domain {domain!r}: unexpected error: "
                        f"{type(exc).__name__}: {exc}"), file=err)
        return 1
    _write(stdout if stdout is not None else sys.stdout, result)
    return 0
