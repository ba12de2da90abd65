"""A bare TAP (``type='ethernet'``): the host side is the caller's (or vifplug's) to connect."""

from __future__ import annotations

from lxml import etree

from vifplug.connections.base import (
    Connection,
    Options,
    finish_interface,
    guest_hop,
    start_interface,
)
from vifplug.model import EthernetVif, TapVif
from vifplug.plan import DeleteLink, EnsureTap, PlanContext, Step
from vifplug.ready import Condition, LinkReady


def ethernet_interface(vif: TapVif, options: Options) -> etree._Element:
    """``type='ethernet'`` with ``<target dev='tap…' managed='no'/>`` (libvirt ≥ 5.1.0): libvirt
    opens the pre-created TAP instead of creating (and later deleting) its own."""
    iface = start_interface(vif, "ethernet")
    return finish_interface(iface, vif, options, target=vif.tap_name, bandwidth=vif.bandwidth,
                            managed_no=True)


def tap_step(vif: TapVif) -> EnsureTap:
    """The TAP QEMU will open as it is (``managed='no'``): it must exist with the right flags."""
    return EnsureTap(vif.tap_name, mtu=vif.mtu, multi_queue=vif.multi_queue)


class Ethernet(Connection[EthernetVif]):
    """``type='ethernet'``: a TAP with nothing attached by libvirt; no ``<virtualport>``."""

    name = "ethernet"
    vif_types = frozenset({"ethernet"})
    summary = "a TAP the host connects by other means (routing, a custom agent)"

    def interface_xml(self, vif: EthernetVif, options: Options) -> etree._Element:
        return ethernet_interface(vif, options)

    def plan(self, vif: EthernetVif, context: PlanContext) -> tuple[Step, ...]:
        return (tap_step(vif),)

    def ready(self, vif: EthernetVif, *, started: bool = False) -> tuple[Condition, ...]:
        return (LinkReady(vif.tap_name),)

    def unplan(self, vif: EthernetVif) -> tuple[Step, ...]:
        return (DeleteLink(vif.tap_name),)

    def topology(self, vif: EthernetVif) -> list[str]:
        return [guest_hop(vif), f"{vif.tap_name} (TAP, routed or attached by the host)"]
