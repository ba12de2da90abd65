"""Linux bridge: the guest TAP enslaved to a host Linux bridge (``type='bridge'``)."""

from __future__ import annotations

from lxml import etree

from vifplug.connections import register
from vifplug.connections.base import (
    Connection,
    Options,
    finish_interface,
    guest_hop,
    start_interface,
)
from vifplug.model import Vif
from vifplug.plan import (
    EnsureLinuxBridge,
    EnsureMaster,
    EnsureVlanLink,
    PlanContext,
    RequireLink,
    Step,
)


@register
class LinuxBridge(Connection):
    """``type='bridge'``, ``<source bridge='<network.bridge>'/>``, ``<target dev='tap…'/>``.

    When the host firewalls and the switch does not filter the port, the VIF's nwfilter
    (``filter``) is emitted as ``<filterref>``.
    """

    name = "bridge"
    vif_types = frozenset({"bridge"})
    summary = "the guest TAP on a Linux bridge"

    def interface_xml(self, vif: Vif, options: Options) -> etree._Element:
        iface = start_interface(vif, "bridge")
        etree.SubElement(iface, "source", bridge=str(vif.network.bridge))
        return finish_interface(iface, vif, options, target=vif.tap_name,
                                filterref=options.firewall and not vif.filtered)

    def plan(self, vif: Vif, context: PlanContext) -> tuple[Step, ...]:
        network = vif.network
        bridge = str(network.bridge)
        steps: list[Step] = []
        if network.create_bridge:
            steps.append(EnsureLinuxBridge(bridge, mtu=vif.mtu))
        else:
            steps.append(RequireLink(bridge, kind="bridge", role="Linux bridge"))
        if network.create_vlan:
            parent, vlan = str(network.interface), int(network.vlan or 0)
            vlan_device = f"{parent}.{vlan}"
            steps += [RequireLink(parent, role="VLAN parent device"),
                      EnsureVlanLink(vlan_device, parent, vlan, mtu=vif.mtu),
                      EnsureMaster(vlan_device, bridge)]
        return tuple(steps)

    # unplan: nothing. The bridge and its VLAN uplink serve every guest on the network, and
    # libvirt deletes the TAP it made when the guest stops.

    def topology(self, vif: Vif) -> list[str]:
        network = vif.network
        bridge = f"{network.bridge} (Linux bridge)"
        if network.create_vlan:
            return [guest_hop(vif), vif.tap_name, bridge, f"{network.interface}.{network.vlan}",
                    str(network.interface)]
        return [guest_hop(vif), vif.tap_name, bridge]
