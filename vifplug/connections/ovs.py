"""Open vSwitch without the hybrid bridge: libvirt's virtualport, or a TAP vifplug adds itself."""

from __future__ import annotations

from lxml import etree

from vifplug.connections import register
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
from vifplug.connections.ethernet import ethernet_interface
from vifplug.errors import UnsupportedError
from vifplug.model import Vif
from vifplug.plan import DeleteLink, DeleteOvsPort, EnsureOvsPort, EnsureTap, PlanContext, Step
from vifplug.xml import add_vlan


def ovs_interface_id(vif: Vif) -> str:
    """The OVS port identity (``external_ids:iface-id``); the model makes it present for ovs."""
    assert vif.ovs is not None  # noqa: S101 - the model requires it for vif_type 'ovs'
    return vif.ovs.interface_id


@register
class OvsVirtualPort(Connection):
    """``type='bridge'`` on the OVS bridge with ``<virtualport type='openvswitch'>``: libvirt adds
    the port (with iface-id, attached-mac, vm-id) and sets the ``<vlan>`` tag or trunk itself."""

    name = "ovs-virtualport"
    vif_types = frozenset({"ovs"})
    rank = 1
    plug_method = "virtualport"
    min_libvirt = OVS_VIRTUALPORT
    summary = "libvirt adds the guest TAP to the OVS bridge (virtualport type='openvswitch')"

    def choose(self, vif: Vif, options: Options) -> str | None:
        if vif.plug == "virtualport":
            if not options.supports(OVS_VIRTUALPORT):
                raise UnsupportedError(
                    f"$.plug: 'virtualport' needs libvirt >= {OVS_VIRTUALPORT} "
                    f"(the XML is for libvirt {options.version_text}); use plug 'manual'"
                )
            return "plug 'virtualport' is given"
        if vif.plug is None and options.supports(OVS_VIRTUALPORT):
            return (f"libvirt {options.version_text} >= {OVS_VIRTUALPORT} adds OVS ports itself"
                    + ("" if not options.firewall else " and the switch filters the port"))
        return None

    def plan(self, vif: Vif, context: PlanContext) -> tuple[Step, ...]:
        # libvirt adds the port (and its external_ids, tag, trunks) when the guest starts.
        return (ovs_bridge_step(str(vif.network.bridge), vif, context),)

    def unplan(self, vif: Vif) -> tuple[Step, ...]:
        # libvirt deletes the port when the guest stops; one left behind (libvirtd died) goes.
        return (DeleteOvsPort(vif.tap_name),)

    def interface_xml(self, vif: Vif, options: Options) -> etree._Element:
        iface = start_interface(vif, "bridge")
        etree.SubElement(iface, "source", bridge=str(vif.network.bridge))
        add_vlan(iface, vif.network.vlan, vif.network.trunk)
        port = etree.SubElement(iface, "virtualport", type="openvswitch")
        etree.SubElement(port, "parameters", interfaceid=ovs_interface_id(vif))
        return finish_interface(iface, vif, options, target=vif.tap_name)

    def topology(self, vif: Vif) -> list[str]:
        network = vif.network
        return [guest_hop(vif), vif.tap_name,
                f"{network.bridge} (OVS, port added by libvirt)"
                + vlan_note(network.vlan, network.trunk)]


@register
class OvsManual(Connection):
    """``type='ethernet'`` with a TAP that vifplug creates and adds to the OVS bridge itself:
    for libvirt older than 0.9.11, or when ``plug: manual`` forces it."""

    name = "ovs-manual"
    vif_types = frozenset({"ovs"})
    rank = 2
    plug_method = "manual"
    summary = "vifplug creates the TAP and its OVS port; libvirt uses the TAP as it is"

    def choose(self, vif: Vif, options: Options) -> str | None:
        if vif.plug == "manual":
            return "plug 'manual' is given"
        if vif.plug is None:
            return (f"libvirt {options.version_text} < {OVS_VIRTUALPORT} cannot add OVS ports "
                    "(virtualport), so vifplug adds the TAP to OVS itself")
        return None

    def interface_xml(self, vif: Vif, options: Options) -> etree._Element:
        return ethernet_interface(vif, options)

    def plan(self, vif: Vif, context: PlanContext) -> tuple[Step, ...]:
        network = vif.network
        bridge = str(network.bridge)
        return (
            ovs_bridge_step(bridge, vif, context),
            EnsureTap(vif.tap_name, mtu=vif.mtu, multi_queue=(vif.queues or 1) > 1),
            EnsureOvsPort(bridge, vif.tap_name, external_ids=ovs_external_ids(vif, context),
                          mtu_request=vif.mtu, tag=network.vlan, trunks=network.trunk or ()),
        )

    def unplan(self, vif: Vif) -> tuple[Step, ...]:
        return (DeleteOvsPort(vif.tap_name), DeleteLink(vif.tap_name))

    def topology(self, vif: Vif) -> list[str]:
        network = vif.network
        return [guest_hop(vif), vif.tap_name,
                f"{network.bridge} (OVS, port added by vifplug)"
                + vlan_note(network.vlan, network.trunk)]
