"""The hybrid OVS path: guest TAP → per-VIF Linux bridge ``qbr…`` → veth ``qvb…``/``qvo…`` → OVS.

It exists so iptables (or nwfilter) can firewall the guest on the Linux bridge, which OVS's own
datapath would bypass: chosen when the host firewalls and the switch does not filter the port.
"""

from __future__ import annotations

from lxml import etree

from vifplug.connections import register
from vifplug.connections.base import (
    Connection,
    Options,
    finish_interface,
    guest_hop,
    ovs_bridge_step,
    ovs_external_ids,
    start_interface,
    vlan_note,
)
from vifplug.model import Vif
from vifplug.plan import (
    DeleteLink,
    DeleteOvsPort,
    EnsureLinuxBridge,
    EnsureMaster,
    EnsureOvsPort,
    EnsureVeth,
    PlanContext,
    Step,
)


@register
class OvsHybrid(Connection):
    """``type='bridge'`` on ``qbr…`` with ``<target dev='tap…'/>``; no virtualport, no ``<vlan>``
    (libvirt refuses a VLAN on a Linux bridge: plug sets the access tag on ``qvo…``)."""

    name = "ovs-hybrid"
    vif_types = frozenset({"ovs"})
    rank = 0
    plug_method = "hybrid"
    summary = "the guest TAP on a per-VIF Linux bridge, joined to OVS by a veth pair"

    def choose(self, vif: Vif, options: Options) -> str | None:
        if vif.plug == "hybrid":
            return "plug 'hybrid' is given"
        if vif.plug is None and options.firewall and not vif.filtered:
            return ("the host firewalls (firewall=True) and the switch does not filter the port, "
                    "so the guest needs a Linux bridge for the firewall to see its traffic")
        return None

    def interface_xml(self, vif: Vif, options: Options) -> etree._Element:
        iface = start_interface(vif, "bridge")
        etree.SubElement(iface, "source", bridge=vif.qbr_name)
        return finish_interface(iface, vif, options, target=vif.tap_name, filterref=True)

    def plan(self, vif: Vif, context: PlanContext) -> tuple[Step, ...]:
        network = vif.network
        bridge = str(network.bridge)
        return (
            ovs_bridge_step(bridge, vif, context),
            EnsureLinuxBridge(vif.qbr_name, mtu=vif.mtu, forward_delay=0, ageing_time=0,
                              disable_ipv6=True),
            EnsureVeth(vif.qvb_name, vif.qvo_name, mtu=vif.mtu),
            EnsureMaster(vif.qvb_name, vif.qbr_name),
            EnsureOvsPort(bridge, vif.qvo_name, external_ids=ovs_external_ids(vif, context),
                          mtu_request=vif.mtu, tag=network.vlan, trunks=network.trunk or ()),
        )

    def unplan(self, vif: Vif) -> tuple[Step, ...]:
        # Deleting qvb takes its peer qvo with it. The guest's TAP is libvirt's: it goes with
        # the guest.
        return (DeleteOvsPort(vif.qvo_name), DeleteLink(vif.qvb_name), DeleteLink(vif.qbr_name))

    def topology(self, vif: Vif) -> list[str]:
        network = vif.network
        return [guest_hop(vif), vif.tap_name, f"{vif.qbr_name} (Linux bridge)",
                f"{vif.qvb_name}═{vif.qvo_name} (veth)",
                f"{network.bridge} (OVS)" + vlan_note(network.vlan, network.trunk)]
