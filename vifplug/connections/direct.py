"""macvtap on a host NIC (``type='direct'``): plain modes, and 802.1Qbg / 802.1Qbh port profiles."""

from __future__ import annotations

from typing import ClassVar, TypeVar

from lxml import etree

from vifplug.connections.base import (
    Connection,
    Options,
    finish_interface,
    guest_hop,
    start_interface,
    vlan_note,
)
from vifplug.model import DirectVif, MacvtapVif, QbgVif, QbhVif
from vifplug.plan import PlanContext, RequireLink, Step
from vifplug.xml import add_vlan

M = TypeVar("M", bound=MacvtapVif)


class _Macvtap(Connection[M]):
    """``type='direct'``, ``<source dev mode>``; ``<vlan>`` in passthrough mode only (the model
    refuses it otherwise); ``<target dev>`` only when ``devname`` is given (else libvirt names
    the macvtap)."""

    def interface_xml(self, vif: M, options: Options) -> etree._Element:
        iface = start_interface(vif, "direct")
        etree.SubElement(iface, "source", dev=vif.network.interface, mode=vif.direct_mode)
        add_vlan(iface, vif.network.vlan, None)
        self.add_virtualport(iface, vif)
        return finish_interface(iface, vif, options, target=vif.devname, bandwidth=vif.bandwidth)

    #: ``<virtualport type>`` of the kinds that have a port profile (its parameters are the
    #: VIF's per-guest identity, :meth:`~vifplug.model.Vif.metadata`).
    port_profile: ClassVar[str | None] = None

    def add_virtualport(self, iface: etree._Element, vif: M) -> None:
        """The port profile, for the kinds that have one."""
        if self.port_profile is not None:
            port = etree.SubElement(iface, "virtualport", type=self.port_profile)
            etree.SubElement(port, "parameters", vif.metadata())

    def plan(self, vif: M, context: PlanContext) -> tuple[Step, ...]:
        # libvirt creates the macvtap; its lower device must exist.
        return (RequireLink(vif.network.interface, role="macvtap lower device"),)

    def topology(self, vif: M) -> list[str]:
        name = vif.devname or "macvtapN"
        return [guest_hop(vif), f"{name} (macvtap, mode {vif.direct_mode})",
                f"{vif.network.interface} (host NIC)" + vlan_note(vif.network.vlan, None)]


class Direct(_Macvtap[DirectVif]):
    """A macvtap in ``vepa`` (default), ``bridge``, ``private`` or ``passthrough`` mode."""

    name = "direct"
    vif_types = frozenset({"direct"})
    summary = "a macvtap on a host NIC"


class Qbg(_Macvtap[QbgVif]):
    """802.1Qbg (VEPA with VDP): ``<virtualport type='802.1Qbg'>`` with managerid, typeid,
    typeidversion and instanceid; the adjacent switch applies the port profile."""

    name = "802.1qbg"
    vif_types = frozenset({"802.1qbg"})
    summary = "a macvtap on a host NIC with an 802.1Qbg (VDP) port profile"
    port_profile = "802.1Qbg"


class Qbh(_Macvtap[QbhVif]):
    """802.1Qbh (VN-Link): ``<virtualport type='802.1Qbh'>`` with the switch's profileid;
    ``passthrough`` mode unless the VIF says otherwise."""

    name = "802.1qbh"
    vif_types = frozenset({"802.1qbh"})
    summary = "a macvtap on a host NIC with an 802.1Qbh (VN-Link) port profile"
    port_profile = "802.1Qbh"
