"""SR-IOV VF passthrough (``type='hostdev'``): the guest owns a PCI virtual function."""

from __future__ import annotations

from lxml import etree

from vifplug.connections.base import (
    Connection,
    Options,
    guest_hop,
    start_interface,
    vlan_note,
)
from vifplug.model import HostDevVif
from vifplug.plan import PlanContext, RequirePci, Step
from vifplug.xml import add_alias, add_rom, add_teaming, add_vlan


class HostDev(Connection[HostDevVif]):
    """``type='hostdev' managed='yes'`` with the VF's PCI address; ``<vlan>`` programs the VF's
    tag; ``<teaming type='transient'>`` makes it the VF half of a failover pair. No model, target,
    mtu or bandwidth: the guest drives the VF itself."""

    name = "hostdev"
    vif_types = frozenset({"hostdev"})
    summary = "an SR-IOV virtual function passed through to the guest"

    def interface_xml(self, vif: HostDevVif, options: Options) -> etree._Element:
        iface = start_interface(vif, "hostdev")
        iface.set("managed", "yes")
        domain, bus, rest = vif.hostdev.pci.split(":")
        slot, function = rest.split(".")
        source = etree.SubElement(iface, "source")
        etree.SubElement(source, "address", type="pci", domain=f"0x{domain}", bus=f"0x{bus}",
                         slot=f"0x{slot}", function=f"0x{function}")
        add_vlan(iface, vif.network.vlan, None)
        add_teaming(iface, vif.teaming)
        add_alias(iface, vif.device_alias)
        add_rom(iface, vif.rom)
        return iface

    def plan(self, vif: HostDevVif, context: PlanContext) -> tuple[Step, ...]:
        return (RequirePci(vif.hostdev.pci),)

    def topology(self, vif: HostDevVif) -> list[str]:
        return [guest_hop(vif),
                f"VF {vif.hostdev.pci} (SR-IOV)" + vlan_note(vif.network.vlan, None)]
