"""The hybrid OVS path: guest TAP → per-VIF Linux bridge ``qbr…`` → veth ``qvb…``/``qvo…`` → OVS.

It exists so iptables (or nwfilter) can firewall the guest on the Linux bridge, which OVS's own
datapath would bypass: chosen when the host firewalls and the switch does not filter the port.
"""

from __future__ import annotations

from lxml import etree

from vifplug.connections.base import (
    Connection,
    Options,
    finish_interface,
    guest_hop,
    ovs_bridge_step,
    start_interface,
)
from vifplug.connections.ovs import ovs_hop, ovs_port_step
from vifplug.model import OvsVif
from vifplug.plan import (
    DeleteLink,
    DeleteOvsPort,
    EnsureLinuxBridge,
    EnsureMaster,
    EnsureVeth,
    PlanContext,
    Step,
)
from vifplug.ready import Condition, LinkReady, OvsPortReady


class OvsHybrid(Connection[OvsVif]):
    """``type='bridge'`` on ``qbr…`` with ``<target dev='tap…'/>``; no virtualport, no ``<vlan>``
    (libvirt refuses a VLAN on a Linux bridge: plug sets the access tag on ``qvo…``)."""

    name = "ovs-hybrid"
    vif_types = frozenset({"ovs"})
    plug_method = "hybrid"
    summary = "the guest TAP on a per-VIF Linux bridge, joined to OVS by a veth pair"

    def interface_xml(self, vif: OvsVif, options: Options) -> etree._Element:
        iface = start_interface(vif, "bridge")
        etree.SubElement(iface, "source", bridge=vif.qbr_name)
        return finish_interface(iface, vif, options, target=vif.tap_name,
                                bandwidth=vif.bandwidth, filterref=vif.filter,
                                coalesce=vif.coalesce)

    def plan(self, vif: OvsVif, context: PlanContext) -> tuple[Step, ...]:
        return (
            ovs_bridge_step(vif.network.bridge, vif.ovs, context),
            EnsureLinuxBridge(vif.qbr_name, mtu=vif.mtu, forward_delay=0, ageing_time=0,
                              disable_ipv6=True),
            EnsureVeth(vif.qvb_name, vif.qvo_name, mtu=vif.mtu),
            EnsureMaster(vif.qvb_name, vif.qbr_name),
            ovs_port_step(vif, vif.qvo_name, context),
        )

    def ready(self, vif: OvsVif, *, started: bool = False) -> tuple[Condition, ...]:
        guest = (LinkReady(vif.tap_name, bridge=vif.qbr_name),) if started else ()
        return (LinkReady(vif.qbr_name), LinkReady(vif.qvb_name, bridge=vif.qbr_name),
                LinkReady(vif.qvo_name), OvsPortReady(vif.qvo_name), *guest)

    def unplan(self, vif: OvsVif) -> tuple[Step, ...]:
        # Deleting qvb takes its peer qvo with it. The guest's TAP is libvirt's: it goes with
        # the guest.
        return (DeleteOvsPort(vif.qvo_name), DeleteLink(vif.qvb_name), DeleteLink(vif.qbr_name))

    def topology(self, vif: OvsVif) -> list[str]:
        return [guest_hop(vif), vif.tap_name, f"{vif.qbr_name} (Linux bridge)",
                f"{vif.qvb_name}═{vif.qvo_name} (veth)", ovs_hop(vif, "")]
