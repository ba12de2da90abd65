"""vhost-user: QEMU's virtio rings shared with a userspace switch (OVS-DPDK) over a UNIX socket."""

from __future__ import annotations

from lxml import etree

from vifplug.connections.base import (
    Connection,
    Options,
    finish_interface,
    guest_hop,
    ovs_bridge_step,
    ovs_external_ids,
    start_interface,
)
from vifplug.model import VhostUserVif
from vifplug.plan import DeleteOvsPort, EnsureOvsPort, PlanContext, Step
from vifplug.ready import Condition, OvsPortReady


class VhostUser(Connection[VhostUserVif]):
    """``type='vhostuser'``, ``<source type='unix' path mode>``; model virtio; no target (the
    OVS port's name, ``devname`` or ``vhu`` + ``id[:11]``, is not a device libvirt knows)."""

    name = "vhostuser"
    vif_types = frozenset({"vhostuser"})
    summary = "virtio rings shared with a userspace switch over a vhost-user socket"

    def interface_xml(self, vif: VhostUserVif, options: Options) -> etree._Element:
        iface = start_interface(vif, "vhostuser")
        etree.SubElement(iface, "source", type="unix", path=vif.vhostuser.socket,
                         mode=vif.vhostuser.mode)
        return finish_interface(iface, vif, options, target=None)

    def plan(self, vif: VhostUserVif, context: PlanContext) -> tuple[Step, ...]:
        """On an OVS-DPDK bridge, the port on the other end of QEMU's socket: QEMU the server
        (``mode: server``, the default) → a ``dpdkvhostuserclient`` port that connects to
        ``socket``; QEMU the client → a ``dpdkvhostuser`` port, OVS serving the socket in its
        own run directory (named after the port: ``socket`` must be that path). Without an OVS
        identity the socket's peer is not ours to plug."""
        bridge = vif.network.bridge
        if vif.ovs is None or bridge is None:
            return ()
        options: tuple[tuple[str, str], ...] = ()
        if vif.vhostuser.mode == "server":
            kind, options = "dpdkvhostuserclient", (("vhost-server-path", vif.vhostuser.socket),)
        else:
            kind = "dpdkvhostuser"
        return (
            ovs_bridge_step(bridge, vif.ovs, context),
            EnsureOvsPort(bridge, vif.port_name,
                          external_ids=ovs_external_ids(vif, vif.ovs, context),
                          mtu_request=vif.mtu, interface_type=kind, options=options),
        )

    def ready(self, vif: VhostUserVif, *, started: bool = False) -> tuple[Condition, ...]:
        if vif.ovs is None or vif.network.bridge is None:
            return ()
        return (OvsPortReady(vif.port_name),)

    def unplan(self, vif: VhostUserVif) -> tuple[Step, ...]:
        if vif.ovs is None or vif.network.bridge is None:
            return ()
        return (DeleteOvsPort(vif.port_name),)

    def topology(self, vif: VhostUserVif) -> list[str]:
        hops = [guest_hop(vif),
                f"{vif.vhostuser.socket} (vhost-user, QEMU is the {vif.vhostuser.mode})"]
        if vif.network.bridge is not None:
            hops.append(f"{vif.network.bridge} (OVS-DPDK)")
        return hops
