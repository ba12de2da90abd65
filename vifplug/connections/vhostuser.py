"""vhost-user: QEMU's virtio rings shared with a userspace switch (OVS-DPDK) over a UNIX socket."""

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

    def topology(self, vif: Vif) -> list[str]:
        assert vif.vhostuser is not None  # noqa: S101
        hops = [guest_hop(vif),
                f"{vif.vhostuser.socket} (vhost-user, QEMU is the {vif.vhostuser.mode})"]
        if vif.network.bridge is not None:
            hops.append(f"{vif.network.bridge} (OVS-DPDK)")
        return hops
