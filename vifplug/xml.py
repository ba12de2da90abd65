"""lxml helpers: the pieces of ``<interface>`` every connection shares, and the vifplug metadata.

Builders append to an element and return nothing; they never read the host. Element and attribute
order follows what libvirt itself writes back (``virsh dumpxml``), so rendered XML reads the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from lxml import etree

from vifplug.spec import METADATA_NS, METADATA_PREFIX

if TYPE_CHECKING:  # only types: rendering pieces need no pydantic at import time
    from vifplug.model import (
        Backend,
        Bandwidth,
        Coalesce,
        Filter,
        Rom,
        Teaming,
        Vif,
        VirtioParams,
    )

__all__ = [
    "METADATA_NS",
    "add_alias",
    "add_backend",
    "add_bandwidth",
    "add_coalesce",
    "add_driver",
    "add_filterref",
    "add_link_mtu",
    "add_model",
    "add_port_isolated",
    "add_rom",
    "add_teaming",
    "add_vlan",
    "metadata_element",
    "metadata_entry",
    "tostring",
]


_SubElement = etree.SubElement


def add_vlan(iface: etree._Element, vlan: int | None, trunk: Iterable[int] | None) -> None:
    """``<vlan><tag id/></vlan>`` for an access VLAN, ``<vlan trunk='yes'>`` for a trunk."""
    if vlan is not None:
        _SubElement(_SubElement(iface, "vlan"), "tag", id=str(vlan))
    elif trunk is not None:
        element = _SubElement(iface, "vlan", trunk="yes")
        for tag in trunk:
            _SubElement(element, "tag", id=str(tag))


def add_model(iface: etree._Element, model: str) -> None:
    """``<model type>``."""
    _SubElement(iface, "model", type=model)


def add_driver(iface: etree._Element, queues: int | None,
               virtio: VirtioParams | None = None) -> None:
    """``<driver queues rx_queue_size tx_queue_size packed/>`` with what the VIF asks for
    (multiqueue, virtio ring tuning); nothing when it asks for none.

    No ``name='vhost'``: naming the backend makes libvirt refuse to start the guest on a host
    without vhost-net ("vhost-net was requested ... but is unavailable"), while leaving it out
    lets libvirt use vhost-net where it exists and QEMU's own backend elsewhere.
    """
    attrib = {} if queues is None else {"queues": str(queues)}
    if virtio is not None:
        if virtio.rx_queue_size is not None:
            attrib["rx_queue_size"] = str(virtio.rx_queue_size)
        if virtio.tx_queue_size is not None:
            attrib["tx_queue_size"] = str(virtio.tx_queue_size)
        if virtio.packed:
            attrib["packed"] = "on"
    if attrib:
        _SubElement(iface, "driver", attrib)


def add_backend(iface: etree._Element, backend: Backend | None) -> None:
    """``<backend tap vhost/>``, each path when given."""
    if backend is None:
        return
    attrib = {key: value for key, value in (("tap", backend.tap), ("vhost", backend.vhost))
              if value is not None}
    _SubElement(iface, "backend", attrib)


def add_coalesce(iface: etree._Element, coalesce: Coalesce | None) -> None:
    """``<coalesce><rx><frames max/></rx></coalesce>``."""
    if coalesce is not None:
        rx = _SubElement(_SubElement(iface, "coalesce"), "rx")
        _SubElement(rx, "frames", max=str(coalesce.rx_max_frames))


def add_rom(iface: etree._Element, rom: Rom | None) -> None:
    """``<rom enabled='no'/>``, or ``<rom bar file/>``."""
    if rom is None:
        return
    if not rom.enabled:
        _SubElement(iface, "rom", enabled="no")
        return
    attrib = {} if rom.bar is None else {"bar": "on" if rom.bar else "off"}
    if rom.file is not None:
        attrib["file"] = rom.file
    _SubElement(iface, "rom", attrib)


def add_filterref(iface: etree._Element, nwfilter: Filter | None) -> None:
    """``<filterref filter>`` with one ``<parameter>`` per filter parameter (libvirt nwfilter)."""
    if nwfilter is None:
        return
    ref = _SubElement(iface, "filterref", filter=nwfilter.name)
    for name, value in nwfilter.parameters:
        _SubElement(ref, "parameter", name=name, value=value)


def add_bandwidth(iface: etree._Element, bandwidth: Bandwidth | None) -> None:
    """``<bandwidth>`` with ``<inbound>`` / ``<outbound>`` (kB/s, kB)."""
    if bandwidth is None:
        return
    element = _SubElement(iface, "bandwidth")
    for direction, rate in (("inbound", bandwidth.inbound), ("outbound", bandwidth.outbound)):
        if rate is None:
            continue
        attrib = {"average": str(rate.average)}
        if rate.peak is not None:
            attrib["peak"] = str(rate.peak)
        if rate.burst is not None:
            attrib["burst"] = str(rate.burst)
        _SubElement(element, direction, attrib)


def add_link_mtu(iface: etree._Element, link_state: str | None, mtu: int | None) -> None:
    """``<link state>`` and ``<mtu size>``, each when given."""
    if link_state is not None:
        _SubElement(iface, "link", state=link_state)
    if mtu is not None:
        _SubElement(iface, "mtu", size=str(mtu))


def add_port_isolated(iface: etree._Element, isolated: bool) -> None:
    """``<port isolated='yes'/>`` when the VIF's bridge port is isolated (nothing otherwise)."""
    if isolated:
        _SubElement(iface, "port", isolated="yes")


def add_teaming(iface: etree._Element, teaming: Teaming | None) -> None:
    """``<teaming type='persistent'/>`` or ``<teaming type='transient' persistent='ua-…'/>``."""
    if teaming is None:
        return
    element = _SubElement(iface, "teaming", type=teaming.type)
    if teaming.persistent is not None:
        element.set("persistent", teaming.persistent)


def add_alias(iface: etree._Element, alias: str | None) -> None:
    """``<alias name='ua-…'/>`` (libvirt keeps only user aliases, those starting ``ua-``)."""
    if alias is not None:
        _SubElement(iface, "alias", name=alias)


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
    virtualport): the OVS interfaceid, the 802.1Qbg parameters, the 802.1Qbh profile; and what
    the guest itself asks of each host (its portgroup, ``ask-*``: :meth:`Vif.requests`), the
    interface layer of the merge rule (:mod:`vifplug.merge`)."""
    return {"mac": vif.mac, "network": vif.network.name, **vif.metadata(), **vif.requests()}


def tostring(element: etree._Element, *, pretty: bool = True) -> str:
    """Serialise an element as text (no XML declaration)."""
    return etree.tostring(element, encoding="unicode", pretty_print=pretty)
