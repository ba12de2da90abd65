"""Linux bridge: the guest TAP enslaved to a host Linux bridge (``type='bridge'``)."""

from __future__ import annotations

from lxml import etree

from vifplug.connections.base import (
    Connection,
    Options,
    finish_interface,
    guest_hop,
    start_interface,
)
from vifplug.model import BridgeVif
from vifplug.plan import (
    EnsureLinuxBridge,
    EnsureMaster,
    EnsureVlanLink,
    PlanContext,
    RequireLink,
    Step,
)
from vifplug.ready import Condition, LinkReady


class LinuxBridge(Connection[BridgeVif]):
    """``type='bridge'``, ``<source bridge='<network.bridge>'/>``, ``<target dev='tap…'/>``.

    When the host firewalls and the switch does not filter the port, the VIF's nwfilter
    (``filter``) is emitted as ``<filterref>``.
    """

    name = "bridge"
    vif_types = frozenset({"bridge"})
    summary = "the guest TAP on a Linux bridge"

    def interface_xml(self, vif: BridgeVif, options: Options) -> etree._Element:
        iface = start_interface(vif, "bridge")
        etree.SubElement(iface, "source", bridge=vif.network.bridge)
        filtering = options.firewall and not vif.filtered
        return finish_interface(iface, vif, options, target=vif.tap_name,
                                bandwidth=vif.bandwidth,
                                filterref=vif.filter if filtering else None,
                                coalesce=vif.coalesce, isolated=vif.isolated)

    def plan(self, vif: BridgeVif, context: PlanContext) -> tuple[Step, ...]:
        network = vif.network
        steps: list[Step] = []
        if network.create_bridge:
            steps.append(EnsureLinuxBridge(network.bridge, mtu=vif.mtu))
        else:
            steps.append(RequireLink(network.bridge, kind="bridge", role="Linux bridge"))
        vlan_device = network.vlan_device  # set when interface and vlan are (create_vlan: both)
        if (network.create_vlan and vlan_device is not None and network.interface is not None
                and network.vlan is not None):
            steps += [RequireLink(network.interface, role="VLAN parent device"),
                      EnsureVlanLink(vlan_device, network.interface, network.vlan, mtu=vif.mtu),
                      EnsureMaster(vlan_device, network.bridge)]
        return tuple(steps)

    def ready(self, vif: BridgeVif, *, started: bool = False) -> tuple[Condition, ...]:
        # the bridge up, the VLAN uplink plug made forwarding on it, and once the guest runs
        # its TAP (libvirt's) too
        network = vif.network
        ports = [network.vlan_device] if network.create_vlan else []
        ports += [vif.tap_name] if started else []
        return (LinkReady(network.bridge),
                *(LinkReady(port, bridge=network.bridge,
                            isolated=vif.isolated and port == vif.tap_name)
                  for port in ports if port))

    # unplan: nothing. The bridge and its VLAN uplink serve every guest on the network, and
    # libvirt deletes the TAP it made when the guest stops.

    def topology(self, vif: BridgeVif) -> list[str]:
        network = vif.network
        bridge = f"{network.bridge} (Linux bridge)"
        if network.create_vlan and network.vlan_device is not None:
            return [guest_hop(vif), vif.tap_name, bridge, network.vlan_device,
                    str(network.interface)]
        return [guest_hop(vif), vif.tap_name, bridge]
