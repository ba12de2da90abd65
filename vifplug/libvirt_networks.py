"""libvirt ``<network>`` definitions from the network map, and guests that name them.

The migration hook is one way for a guest to land on each host's own switch: it rewrites the
incoming ``<interface>``. libvirt's own way is the network abstraction: each host defines a
libvirt network ``red`` saying how *it* connects guests (a Linux bridge, an OVS bridge with a
VLAN, macvtap on a NIC), and a guest names only the network, ``<interface type='network'><source
network='red'/>``. A guest defined that way migrates between hosts whose ``red`` differ with no
hook at all. This module makes both halves from vifplug's own inputs:

- :func:`network_element`: one ``<network>`` per map network (``vifplug host
  libvirt-networks``), following formatnetwork: ``<forward mode='bridge'/>`` with ``<bridge
  name>`` for a Linux bridge; the same plus ``<virtualport type='openvswitch'/>`` and the map's
  ``<vlan>`` for OVS; OVN the same on its integration bridge, without a VLAN (ovn-controller
  binds the port by its interfaceid); ``<forward mode='vepa|bridge|private|passthrough'>`` with
  ``<interface dev>`` and the host's 802.1Qbg/Qbh ``<virtualport>`` for direct. The map's MTU
  becomes ``<mtu size>``. Each map portgroup becomes a ``<portgroup name>`` (``default='yes'``
  on the map's ``default_portgroup``) with its ``<vlan>``, port profile ``<virtualport>``,
  ``<bandwidth>`` and ``trustGuestRxFilters``. libvirt refuses a network-wide ``<bandwidth>`` on
  a ``<forward mode='bridge'>`` or macvtap network, so the map network's ``bandwidth`` goes into
  each portgroup that gives none (a network without portgroups gets one, ``default``, to hold
  it): the same result per guest as the hook's merge rule.
- :func:`as_network`: a VIF's rendered ``<interface>`` turned into ``type='network'`` on its
  logical network: the switch-specific parts (``<source>``, ``<vlan>``, the virtualport's type
  and host-level parameters) are the network's business now, so they go; the per-guest ones
  stay: MAC, target, model, MTU, bandwidth, filter, and the virtualport's per-guest identities
  (``interfaceid``, ``instanceid``) in an *untyped* ``<virtualport>``, which libvirt merges with
  whatever virtualport type each host's network has (formatdomain: "the type ... may be left
  out ... any parameters that are specified ... are passed on to the network").
"""

from __future__ import annotations

import copy
from typing import Any

from lxml import etree

from vifplug.errors import VifError, VifplugError
from vifplug.netmap import (
    Bandwidth,
    DirectNetwork,
    LegacyNetwork,
    MappedNetwork,
    NetworkMap,
    OvnNetwork,
    OvsNetwork,
    Portgroup,
    QbgShared,
)
from vifplug.xml import add_vlan

__all__ = ["AS_NETWORK_KINDS", "LibvirtNetworkError", "as_network", "define_networks",
           "network_element", "network_elements"]

_SubElement = etree.SubElement

#: The connections whose guest side a libvirt network can stand for, by Connection.name. The
#: others plug something per guest that no network definition describes: hybrid (a qbr bridge
#: of the guest's own), manual/ethernet (a TAP vifplug made), vhost-user (a socket), hostdev (a
#: PCI device), vdpa (a vhost-vdpa device).
AS_NETWORK_KINDS = frozenset({"bridge", "ovs-virtualport", "direct", "802.1qbg", "802.1qbh"})
#: The per-guest identities a ``<virtualport>`` carries (the rest are the host's).
_PER_GUEST = ("interfaceid", "instanceid")


def network_elements(host_map: NetworkMap) -> list[etree._Element]:
    """One ``<network>`` per network of the map, by name."""
    return [network_element(network, host_map.definitions(name))
            for name, network in sorted(host_map.networks.items())]


def network_element(network: MappedNetwork,
                    options: tuple[MappedNetwork, ...] = ()) -> etree._Element:
    """The libvirt ``<network>`` that connects guests as the map says for ``network``.

    libvirt has no priority list: a network with options (``options``, the network's
    :meth:`~vifplug.netmap.NetworkMap.definitions`) is defined as its first option — pass that
    as ``network`` — and a comment in the document names the options libvirt does not get (the
    hook's alone: a guest on the libvirt network never falls back to them)."""
    root = etree.Element("network")
    _SubElement(root, "name").text = network.name
    if len(options) > 1:
        rest = "; ".join(f"options[{n.option}]: {n.describe()}" for n in options
                         if n.option != network.option)
        root.append(etree.Comment(
            f" vifplug: network {network.name} lists {len(options)} connection options; "
            f"libvirt takes one definition per network: this is options[{network.option}]. "
            f"Not here (the qemu hook's only): {rest} ".replace("--", "- -")))
    if isinstance(network, DirectNetwork):
        if network.trust_guest_rx_filters is not None:
            root.set("trustGuestRxFilters", "yes" if network.trust_guest_rx_filters else "no")
        forward = _SubElement(root, "forward", mode=network.mode)
        for nic in network.nics:  # a pool: libvirt hands them out itself
            _SubElement(forward, "interface", dev=nic)
        _port_profile(root, network.qbg, network.qbh_profile_id)
        _portgroups(root, network)
        return root
    _SubElement(root, "forward", mode="bridge")
    _SubElement(root, "bridge", name=network.bridge)
    if isinstance(network, LegacyNetwork):
        _mtu(root, network.mtu)
        _portgroups(root, network)
        return root
    _SubElement(root, "virtualport", type="openvswitch")
    if isinstance(network, OvsNetwork):
        add_vlan(root, network.access_tag, network.trunk)
        _mtu(root, network.mtu)
    else:
        assert isinstance(network, OvnNetwork)  # noqa: S101 - the four kinds of MappedNetwork
    _portgroups(root, network)
    return root


#: The portgroup made to hold a network-wide bandwidth when the map gives no portgroup.
IMPLICIT_PORTGROUP = "default"


def _portgroups(root: etree._Element, network: MappedNetwork) -> None:
    """One ``<portgroup>`` per map portgroup, the default marked, each with the network's
    bandwidth unless it gives its own (see the module doc)."""
    groups = network.portgroups
    default = network.default_portgroup
    if not groups and network.bandwidth is not None:
        groups, default = (Portgroup(IMPLICIT_PORTGROUP),), IMPLICIT_PORTGROUP
    for group in groups:
        element = _SubElement(root, "portgroup", name=group.name)
        if group.name == default:
            element.set("default", "yes")
        if group.trust_guest_rx_filters is not None:
            element.set("trustGuestRxFilters", "yes" if group.trust_guest_rx_filters else "no")
        _port_profile(element, group.qbg, group.profile_id)
        _bandwidth(element, group.bandwidth or network.bandwidth)
        add_vlan(element, group.vlan, group.trunk)


def _port_profile(parent: etree._Element, qbg: QbgShared | None, profile: str | None) -> None:
    if qbg is not None:
        port = _SubElement(parent, "virtualport", type="802.1Qbg")
        _SubElement(port, "parameters", managerid=str(qbg.manager_id), typeid=str(qbg.type_id),
                    typeidversion=str(qbg.type_id_version))
    elif profile is not None:
        port = _SubElement(parent, "virtualport", type="802.1Qbh")
        _SubElement(port, "parameters", profileid=profile)


def _bandwidth(parent: etree._Element, bandwidth: Bandwidth | None) -> None:
    if bandwidth is None:
        return
    element = _SubElement(parent, "bandwidth")
    for direction in ("inbound", "outbound"):
        rate = getattr(bandwidth, direction)
        if rate is not None:
            attrib = {key: str(getattr(rate, key)) for key in ("average", "peak", "burst")
                      if getattr(rate, key) is not None}
            _SubElement(element, direction, attrib)


def _mtu(root: etree._Element, mtu: int | None) -> None:
    if mtu is not None:
        _SubElement(root, "mtu", size=str(mtu))


def as_network(interface: etree._Element, *, network: str, connection: str,
               portgroup: str | None = None) -> etree._Element:
    """``interface`` (as vifplug rendered it with ``connection``) as ``type='network'`` on the
    libvirt network ``network`` (and its ``portgroup``, when the VIF names one: else libvirt
    gives the network's default portgroup): a new element, the input unchanged.

    Raises VifError naming the connection when no libvirt network can stand for it
    (:data:`AS_NETWORK_KINDS`)."""
    if connection not in AS_NETWORK_KINDS:
        kinds = ", ".join(sorted(AS_NETWORK_KINDS))
        raise VifError(f"--as-network: a VIF connected by {connection} cannot be a libvirt "
                       f"network's guest (only {kinds}: the others plug a device of the guest's "
                       "own that no network definition describes)")
    result = etree.Element("interface", type="network")
    for child in interface:
        tag = child.tag
        if tag == "source":
            source = _SubElement(result, "source", network=network)
            if portgroup is not None:
                source.set("portgroup", portgroup)
        elif tag == "vlan":
            continue  # the network's (its <vlan>, or none on this host's switch)
        elif tag == "virtualport":
            identities = _identities(child)
            if identities:
                port = _SubElement(result, "virtualport")
                _SubElement(port, "parameters", identities)
        else:
            result.append(copy.deepcopy(child))
    return result


def _identities(virtualport: etree._Element) -> dict[str, str]:
    parameters = virtualport.find("parameters")
    if parameters is None:
        return {}
    return {key: parameters.get(key, "") for key in _PER_GUEST if parameters.get(key)}


class LibvirtNetworkError(VifplugError):
    """libvirt refused a network definition, or cannot be reached."""


def define_networks(uri: str, documents: list[str]) -> list[tuple[str, str]]:
    """Define each ``<network>`` document on the libvirt at ``uri`` (persistent), mark it
    autostarted and start it if it is not running; what was done, per network name.

    A network that exists is redefined: libvirt keeps a running network on its old definition
    until it is restarted, and the result says so when the definition changed."""
    try:
        import libvirt
    except ImportError:
        raise LibvirtNetworkError("--define needs libvirt-python (pip install "
                                  "'vifplug[libvirt]')") from None
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError as exc:
        raise LibvirtNetworkError(f"cannot connect to {uri}: {exc}") from None
    done: list[tuple[str, str]] = []
    try:
        for text in documents:
            name = etree.fromstring(text).findtext("name", "")
            try:
                done.append((name, _define(libvirt, conn, name, text)))
            except libvirt.libvirtError as exc:
                raise LibvirtNetworkError(f"network {name}: {uri}: {exc}") from None
    finally:
        conn.close()
    return done


def _definition(libvirt: Any, network: Any) -> str:
    """The network's persistent definition (libvirt's test driver knows only the live one)."""
    try:
        return str(network.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE))
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_INVALID_ARG:
            raise
        return str(network.XMLDesc(0))


def _define(libvirt: Any, conn: Any, name: str, text: str) -> str:
    try:
        existing = conn.networkLookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_NETWORK:
            raise
        existing = None
    before: str | None = None
    if existing is not None:  # a redefinition must carry the network's UUID
        before = _definition(libvirt, existing)
        document = etree.fromstring(text)
        uuid = etree.Element("uuid")
        uuid.text = existing.UUIDString()
        name_element = document.find("name")
        assert name_element is not None  # noqa: S101 - network_element always writes it
        name_element.addnext(uuid)
        text = etree.tostring(document, encoding="unicode")
    network = conn.networkDefineXML(text)
    changed = before is not None and _definition(libvirt, network) != before
    actions = ["defined" if before is None else "redefined" if changed else "unchanged"]
    if not network.autostart():
        network.setAutostart(1)
        actions.append("autostart on")
    if not network.isActive():
        network.create()
        actions.append("started")
    elif changed:
        actions.append("running on its previous definition until restarted "
                       f"(virsh net-destroy {name}; virsh net-start {name})")
    else:
        actions.append("running")
    return ", ".join(actions)
