"""Open vSwitch without the hybrid bridge: libvirt's virtualport, or a TAP vifplug adds itself."""

from __future__ import annotations

from lxml import etree

from vifplug.connections.base import (
    OVS_VIRTUALPORT,
    Connection,
    Options,
    finish_interface,
    guest_hop,
    ovs_bridge_step,
    ovs_external_ids,
    start_interface,
    vlan_note,
)
from vifplug.connections.ethernet import ethernet_interface, tap_step
from vifplug.errors import UnsupportedError
from vifplug.model import OvsVif
from vifplug.plan import DeleteLink, DeleteOvsPort, EnsureOvsPort, PlanContext, Step
from vifplug.ready import Condition, LinkReady, OvsPortReady
from vifplug.xml import add_vlan


def ovs_port_step(vif: OvsVif, port: str, context: PlanContext) -> EnsureOvsPort:
    """The OVS port vifplug adds for ``vif`` (named ``port``), with its identity, MTU and VLANs."""
    network = vif.network
    return EnsureOvsPort(network.bridge, port,
                         external_ids=ovs_external_ids(vif, vif.ovs, context),
                         mtu_request=vif.mtu, tag=network.vlan, trunks=network.trunk or ())


def ovs_hop(vif: OvsVif, who: str) -> str:
    """The OVS bridge's hop in a topology."""
    network = vif.network
    return f"{network.bridge} (OVS{who})" + vlan_note(network.vlan, network.trunk)


class OvsVirtualPort(Connection[OvsVif]):
    """``type='bridge'`` on the OVS bridge with ``<virtualport type='openvswitch'>``: libvirt adds
    the port (with iface-id, attached-mac, vm-id) and sets the ``<vlan>`` tag or trunk itself."""

    name = "ovs-virtualport"
    vif_types = frozenset({"ovs"})
    plug_method = "virtualport"
    min_libvirt = OVS_VIRTUALPORT
    summary = "libvirt adds the guest TAP to the OVS bridge (virtualport type='openvswitch')"

    def plan(self, vif: OvsVif, context: PlanContext) -> tuple[Step, ...]:
        # libvirt adds the port (and its external_ids, tag, trunks) when the guest starts.
        return (ovs_bridge_step(vif.network.bridge, vif.ovs, context),)

    def ready(self, vif: OvsVif, *, started: bool = False) -> tuple[Condition, ...]:
        # the port is libvirt's: it exists once the guest runs
        return (OvsPortReady(vif.tap_name),) if started else ()

    def unplan(self, vif: OvsVif) -> tuple[Step, ...]:
        # libvirt deletes the port when the guest stops; one left behind (libvirtd died) goes.
        return (DeleteOvsPort(vif.tap_name),)

    def interface_xml(self, vif: OvsVif, options: Options) -> etree._Element:
        iface = start_interface(vif, "bridge")
        etree.SubElement(iface, "source", bridge=vif.network.bridge)
        add_vlan(iface, vif.network.vlan, vif.network.trunk)
        port = etree.SubElement(iface, "virtualport", type="openvswitch")
        etree.SubElement(port, "parameters", interfaceid=vif.ovs.interface_id)
        return finish_interface(iface, vif, options, target=vif.tap_name,
                                bandwidth=vif.bandwidth, coalesce=vif.coalesce)

    def topology(self, vif: OvsVif) -> list[str]:
        return [guest_hop(vif), vif.tap_name, ovs_hop(vif, ", port added by libvirt")]


class OvsManual(Connection[OvsVif]):
    """``type='ethernet'`` with a TAP that vifplug creates and adds to the OVS bridge itself:
    for libvirt older than 0.9.11, or when ``plug: manual`` forces it."""

    name = "ovs-manual"
    vif_types = frozenset({"ovs"})
    plug_method = "manual"
    summary = "vifplug creates the TAP and its OVS port; libvirt uses the TAP as it is"

    def interface_xml(self, vif: OvsVif, options: Options) -> etree._Element:
        if vif.coalesce is not None:  # chosen for an old libvirt: the model refuses plug manual
            raise UnsupportedError("$.coalesce: libvirt refuses <coalesce> on the "
                                   "type='ethernet' of the manual plug method (libvirt "
                                   f"{options.version_text} < {OVS_VIRTUALPORT})")
        return ethernet_interface(vif, options)

    def plan(self, vif: OvsVif, context: PlanContext) -> tuple[Step, ...]:
        return (ovs_bridge_step(vif.network.bridge, vif.ovs, context), tap_step(vif),
                ovs_port_step(vif, vif.tap_name, context))

    def ready(self, vif: OvsVif, *, started: bool = False) -> tuple[Condition, ...]:
        return (LinkReady(vif.tap_name), OvsPortReady(vif.tap_name))

    def unplan(self, vif: OvsVif) -> tuple[Step, ...]:
        return (DeleteOvsPort(vif.tap_name), DeleteLink(vif.tap_name))

    def topology(self, vif: OvsVif) -> list[str]:
        return [guest_hop(vif), vif.tap_name, ovs_hop(vif, ", port added by vifplug")]
