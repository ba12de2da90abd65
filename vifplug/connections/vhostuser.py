"""vhost-user: QEMU's virtio rings shared with a userspace switch (OVS-DPDK) over a UNIX socket."""

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
)
from vifplug.model import Vif
from vifplug.plan import DeleteOvsPort, EnsureOvsPort, PlanContext, Step


@register
class VhostUser(Connection):
    """``type='vhostuser'``, ``<source type='unix' path mode>``; model virtio; no target."""

    name = "vhostuser"
    vif_types = frozenset({"vhostuser"})
    summary = "virtio rings shared with a userspace switch over a vhost-user socket"

    def interface_xml(self, vif: Vif, options: Options) -> etree._Element:
        assert vif.vhostuser is not None  # noqa: S101 - required by the model for vhostuser
        iface = start_interface(vif, "vhostuser")
        etree.SubElement(iface, "source", type="unix", path=vif.vhostuser.socket,
                         mode=vif.vhostuser.mode)
        return finish_interface(iface, vif, options, target=None)

    def plan(self, vif: Vif, context: PlanContext) -> tuple[Step, ...]:
        """On an OVS-DPDK bridge, the port on the other end of QEMU's socket: QEMU the server
        (``mode: server``, the default) → a ``dpdkvhostuserclient`` port that connects to
        ``socket``; QEMU the client → a ``dpdkvhostuser`` port, OVS serving the socket in its
        own run directory (named after the port: ``socket`` must be that path). Without an OVS
        identity the socket's peer is not ours to plug."""
        assert vif.vhostuser is not None  # noqa: S101
        if vif.ovs is None or vif.network.bridge is None:
            return ()
        bridge = vif.network.bridge
        options: tuple[tuple[str, str], ...] = ()
        if vif.vhostuser.mode == "server":
            kind, options = "dpdkvhostuserclient", (("vhost-server-path", vif.vhostuser.socket),)
        else:
            kind = "dpdkvhostuser"
        return (
            ovs_bridge_step(bridge, vif, context),
            EnsureOvsPort(bridge, self.port_name(vif),
                          external_ids=ovs_external_ids(vif, context), mtu_request=vif.mtu,
                          interface_type=kind, options=options),
        )

    def unplan(self, vif: Vif) -> tuple[Step, ...]:
        if vif.ovs is None or vif.network.bridge is None:
            return ()
        return (DeleteOvsPort(self.port_name(vif)),)

    @staticmethod
    def port_name(vif: Vif) -> str:
        """``vhu`` + ``id[:11]``, as os-vif names vhost-user ports."""
        return "vhu" + vif.nic_name_suffix

    def topology(self, vif: Vif) -> list[str]:
        assert vif.vhostuser is not None  # noqa: S101
        hops = [guest_hop(vif),
                f"{vif.vhostuser.socket} (vhost-user, QEMU is the {vif.vhostuser.mode})"]
        if vif.network.bridge is not None:
            hops.append(f"{vif.network.bridge} (OVS-DPDK)")
        return hops
