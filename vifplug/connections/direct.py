"""macvtap on a host NIC (``type='direct'``): plain modes, and 802.1Qbg / 802.1Qbh port profiles."""

from __future__ import annotations

from lxml import etree

from vifplug.connections import register
from vifplug.connections.base import (
    Connection,
    Options,
    finish_interface,
    guest_hop,
    start_interface,
    vlan_note,
)
from vifplug.model import Vif
from vifplug.plan import PlanContext, RequireLink, Step
from vifplug.xml import add_vlan


class _Macvtap(Connection):
    """``type='direct'``, ``<source dev mode>``; ``<vlan>`` in passthrough mode only (the model
    refuses it otherwise); ``<target dev>`` only when ``devname`` is given (else libvirt names
    the macvtap)."""

    def interface_xml(self, vif: Vif, options: Options) -> etree._Element:
        iface = start_interface(vif, "direct")
        etree.SubElement(iface, "source", dev=str(vif.network.interface), mode=vif.direct_mode)
        add_vlan(iface, vif.network.vlan, None)
        self.add_virtualport(iface, vif)
        return finish_interface(iface, vif, options, target=vif.devname)

    def add_virtualport(self, iface: etree._Element, vif: Vif) -> None:
        """The port profile, for the kinds that have one."""

    def plan(self, vif: Vif, context: PlanContext) -> tuple[Step, ...]:
        # libvirt creates the macvtap; its lower device must exist.
        return (RequireLink(str(vif.network.interface), role="macvtap lower device"),)

    def topology(self, vif: Vif) -> list[str]:
        name = vif.devname or "macvtapN"
        return [guest_hop(vif), f"{name} (macvtap, mode {vif.direct_mode})",
                f"{vif.network.interface} (host NIC)" + vlan_note(vif.network.vlan, None)]


@register
class Direct(_Macvtap):
    """A macvtap in ``vepa`` (default), ``bridge``, ``private`` or ``passthrough`` mode."""

    name = "direct"
    vif_types = frozenset({"direct"})
    summary = "a macvtap on a host NIC"


@register
class Qbg(_Macvtap):
    """802.1Qbg (VEPA with VDP): ``<virtualport type='802.1Qbg'>`` with managerid, typeid,
    typeidversion and instanceid; the adjacent switch applies the port profile."""

    name = "802.1qbg"
    vif_types = frozenset({"802.1qbg"})
    summary = "a macvtap on a host NIC with an 802.1Qbg (VDP) port profile"

    def add_virtualport(self, iface: etree._Element, vif: Vif) -> None:
        assert vif.qbg is not None  # noqa: S101 - the model requires it for vif_type '802.1qbg'
        port = etree.SubElement(iface, "virtualport", type="802.1Qbg")
        etree.SubElement(
            port, "parameters",
            managerid=str(vif.qbg.manager_id), typeid=str(vif.qbg.type_id),
            typeidversion=str(vif.qbg.type_id_version), instanceid=vif.qbg.instance_id,
        )


@register
class Qbh(_Macvtap):
    """802.1Qbh (VN-Link): ``<virtualport type='802.1Qbh'>`` with the switch's profileid;
    ``passthrough`` mode unless the VIF says otherwise."""

    name = "802.1qbh"
    vif_types = frozenset({"802.1qbh"})
    summary = "a macvtap on a host NIC with an 802.1Qbh (VN-Link) port profile"

    def add_virtualport(self, iface: etree._Element, vif: Vif) -> None:
        assert vif.qbh is not None  # noqa: S101 - the model requires it for vif_type '802.1qbh'
        port = etree.SubElement(iface, "virtualport", type="802.1Qbh")
        etree.SubElement(port, "parameters", profileid=vif.qbh.profile_id)
