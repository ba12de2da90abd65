"""A bare TAP (``type='ethernet'``): the host side is the caller's (or vifplug's) to connect."""

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
from vifplug.plan import DeleteLink, EnsureTap, PlanContext, Step


def ethernet_interface(vif: Vif, options: Options) -> etree._Element:
    """``type='ethernet'`` with ``<target dev='tap…' managed='no'/>`` (libvirt ≥ 5.1.0): libvirt
    opens the pre-created TAP instead of creating (and later deleting) its own."""
    iface = start_interface(vif, "ethernet")
    return finish_interface(iface, vif, options, target=vif.tap_name, managed_no=True)


@register
class Ethernet(Connection):
    """``type='ethernet'``: a TAP with nothing attached by libvirt; no ``<virtualport>``."""

    name = "ethernet"
    vif_types = frozenset({"ethernet"})
    summary = "a TAP the host connects by other means (routing, a custom agent)"

    def interface_xml(self, vif: Vif, options: Options) -> etree._Element:
        return ethernet_interface(vif, options)

    def plan(self, vif: Vif, context: PlanContext) -> tuple[Step, ...]:
        # managed='no': libvirt opens this TAP as it is, so it must exist with the right flags.
        return (EnsureTap(vif.tap_name, mtu=vif.mtu, multi_queue=(vif.queues or 1) > 1),)

    def unplan(self, vif: Vif) -> tuple[Step, ...]:
        return (DeleteLink(vif.tap_name),)

    def topology(self, vif: Vif) -> list[str]:
        return [guest_hop(vif), f"{vif.tap_name} (TAP, routed or attached by the host)"]
