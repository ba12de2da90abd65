"""vDPA (``type='vdpa'``): a virtio NIC whose data path a vDPA device implements in hardware.

The device is a ``/dev/vhost-vdpa-N`` character device the host made beforehand (``vdpa dev add``
on an offloading NIC's VF, whose representor is typically a port of hardware-offloaded OVS):
vifplug neither creates it nor plugs its representor, it checks that it exists.
"""

from __future__ import annotations

from lxml import etree

from vifplug.connections.base import (
    VDPA,
    Connection,
    Options,
    finish_interface,
    guest_hop,
    start_interface,
)
from vifplug.model import VdpaVif
from vifplug.plan import PlanContext, RequireCharDevice, Step


class Vdpa(Connection[VdpaVif]):
    """``type='vdpa'``, ``<source dev='/dev/vhost-vdpa-N'/>``, model virtio; no target (there is
    no host net device), no MTU or queues (the vDPA device's own, set where it is made)."""

    name = "vdpa"
    vif_types = frozenset({"vdpa"})
    min_libvirt = VDPA
    summary = "a virtio NIC whose data path a vDPA device implements (/dev/vhost-vdpa-N)"

    def interface_xml(self, vif: VdpaVif, options: Options) -> etree._Element:
        iface = start_interface(vif, "vdpa")
        etree.SubElement(iface, "source", dev=vif.vdpa.device)
        return finish_interface(iface, vif, options, target=None)

    def plan(self, vif: VdpaVif, context: PlanContext) -> tuple[Step, ...]:
        # QEMU opens the device when the guest starts: it must exist (and be a char device).
        return (RequireCharDevice(vif.vdpa.device, role="vDPA device"),)

    def topology(self, vif: VdpaVif) -> list[str]:
        return [guest_hop(vif), f"{vif.vdpa.device} (vhost-vdpa)"]
