"""lxml helpers: the pieces of ``<interface>`` every connection shares, and the vifplug metadata.

Builders append to an element and return nothing; they never read the host. Element and attribute
order follows what libvirt itself writes back (``virsh dumpxml``), so rendered XML reads the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from lxml import etree

if TYPE_CHECKING:  # the hook imports this module: it must not pull in pydantic
    from vifplug.model import Vif

__all__ = [
    "METADATA_NS",
    "add_bandwidth",
    "add_driver",
    "add_filterref",
    "add_link_mtu",
    "add_mac",
    "add_model",
    "add_vlan",
    "metadata_element",
    "metadata_entry",
    "tostring",
]

#: The namespace of vifplug's domain ``<metadata>`` element (HOOK_CONTRACT.md).
METADATA_NS = "http://vifplug.org/xmlns/vifplug/1"
METADATA_PREFIX = "vifplug"

_SubElement = etree.SubElement


def add_mac(iface: etree._Element, vif: Vif) -> None:
    """``<mac address>``."""
    _SubElement(iface, "mac", address=vif.mac)


def add_vlan(iface: etree._Element, vlan: int | None, trunk: Iterable[int] | None) -> None:
    """``<vlan><tag id/></vlan>`` for an access VLAN, ``<vlan trunk='yes'>`` for a trunk."""
    if vlan is not None:
        _SubElement(_SubElement(iface, "vlan"), "tag", id=str(vlan))
    elif trunk is not None:
        element = _SubElement(iface, "vlan", trunk="yes")
        for tag in trunk:
            _SubElement(element, "tag", id=str(tag))


def add_model(iface: etree._Element, vif: Vif) -> None:
    """``<model type>`` (virtio unless the VIF says otherwise)."""
    _SubElement(iface, "model", type=vif.nic_model)


def add_driver(iface: etree._Element, vif: Vif) -> None:
    """``<driver queues='N'/>`` when the VIF asks for multiqueue.

    No ``name='vhost'``: naming the backend makes libvirt refuse to start the guest on a host
    without vhost-net ("vhost-net was requested ... but is unavailable"), while leaving it out
    lets libvirt use vhost-net where it exists and QEMU's own backend elsewhere.
    """
    if vif.queues is not None:
        _SubElement(iface, "driver", queues=str(vif.queues))


def add_filterref(iface: etree._Element, vif: Vif) -> None:
    """``<filterref filter>`` with one ``<parameter>`` per filter parameter (libvirt nwfilter)."""
    if vif.filter is None:
        return
    ref = _SubElement(iface, "filterref", filter=vif.filter.name)
    for name, value in vif.filter.parameters:
        _SubElement(ref, "parameter", name=name, value=value)


def add_bandwidth(iface: etree._Element, vif: Vif) -> None:
    """``<bandwidth>`` with ``<inbound>`` / ``<outbound>`` (kB/s, kB)."""
    if vif.bandwidth is None:
        return
    element = _SubElement(iface, "bandwidth")
    bandwidth = vif.bandwidth
    for direction, rate in (("inbound", bandwidth.inbound), ("outbound", bandwidth.outbound)):
        if rate is None:
            continue
        attrib = {"average": str(rate.average)}
        if rate.peak is not None:
            attrib["peak"] = str(rate.peak)
        if rate.burst is not None:
            attrib["burst"] = str(rate.burst)
        _SubElement(element, direction, attrib)


def add_link_mtu(iface: etree._Element, vif: Vif, *, mtu: bool) -> None:
    """``<link state>`` when given; ``<mtu size>`` when given and ``mtu`` (libvirt ≥ 3.1.0)."""
    if vif.link_state is not None:
        _SubElement(iface, "link", state=vif.link_state)
    if mtu and vif.mtu is not None:
        _SubElement(iface, "mtu", size=str(vif.mtu))


def metadata_element(entries: Iterable[dict[str, str]]) -> etree._Element:
    """``<vifplug:interfaces>`` with one ``<vifplug:interface mac network …/>`` per entry."""
    root = etree.Element(f"{{{METADATA_NS}}}interfaces", nsmap={METADATA_PREFIX: METADATA_NS})
    tag = f"{{{METADATA_NS}}}interface"
    for attrib in entries:
        _SubElement(root, tag, attrib)
    return root


def metadata_entry(vif: Vif) -> dict[str, str]:
    """The metadata attributes of one VIF: its MAC and network, and the per-guest identity the
    migration hook must carry across hosts whose switch does not keep it (a Linux bridge has no
    virtualport): the OVS interfaceid, the 802.1Qbg parameters, the 802.1Qbh profile."""
    entry = {"mac": vif.mac, "network": vif.network.name}
    if vif.ovs is not None:
        entry["interfaceid"] = vif.ovs.interface_id
    if vif.qbg is not None:
        entry.update(managerid=str(vif.qbg.manager_id), typeid=str(vif.qbg.type_id),
                     typeidversion=str(vif.qbg.type_id_version),
                     instanceid=vif.qbg.instance_id)
    if vif.qbh is not None:
        entry["profileid"] = vif.qbh.profile_id
    return entry


def tostring(element: etree._Element, *, pretty: bool = True) -> str:
    """Serialise an element as text (no XML declaration)."""
    return etree.tostring(element, encoding="unicode", pretty_print=pretty)
