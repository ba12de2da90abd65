"""What every connection kind is: a small plugin that owns its XML and its host plan.

A connection serves one or more ``vif_type`` values (its VIF class is its type parameter); which
one a VIF gets is decided in one place, :func:`vifplug.selection.select`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar, Generic, TypeVar

from lxml import etree

from vifplug.errors import UnsupportedError
from vifplug.model import Bandwidth, Coalesce, Filter, GuestNic, OvsParams, TapVif, Vif
from vifplug.plan import EnsureOvsBridge, PlanContext, RequireOvsBridge, Step
from vifplug.ready import Condition
from vifplug.version import LibvirtVersion
from vifplug.xml import (
    add_alias,
    add_backend,
    add_bandwidth,
    add_coalesce,
    add_driver,
    add_filterref,
    add_link_mtu,
    add_model,
    add_port_isolated,
    add_rom,
    add_teaming,
)

__all__ = [
    "BACKEND",
    "COALESCE",
    "MANAGED_NO",
    "MTU",
    "OVS_VIRTUALPORT",
    "PACKED",
    "PORT_ISOLATED",
    "ROM",
    "ROM_ENABLED",
    "RX_QUEUE_SIZE",
    "TEAMING",
    "TRUST_GUEST_RX_FILTERS",
    "TX_QUEUE_SIZE",
    "USER_ALIAS",
    "VDPA",
    "Connection",
    "Options",
    "check_versions",
    "finish_interface",
    "guest_hop",
    "ovs_bridge_step",
    "ovs_external_ids",
    "start_interface",
    "vlan_note",
]

#: ``<virtualport type='openvswitch'>`` (libvirt adds the OVS port itself) since libvirt 0.9.11.
OVS_VIRTUALPORT = LibvirtVersion(0, 9, 11)
#: ``<mtu size>`` since libvirt 3.1.0.
MTU = LibvirtVersion(3, 1, 0)
#: ``<target dev managed='no'>`` (use a pre-created TAP as it is) since libvirt 5.1.0.
MANAGED_NO = LibvirtVersion(5, 1, 0)
# The gates below are errors, never silent drops: a VIF asking for a feature the target libvirt
# lacks is refused (UnsupportedError, exit 2) naming the key's JSON path and the version
# (version_gates, check_versions: run by vifplug.selection.select before anything is rendered).

#: ``<interface trustGuestRxFilters>`` since libvirt 1.2.10.
TRUST_GUEST_RX_FILTERS = LibvirtVersion(1, 2, 10)
#: ``<rom bar file>`` on an ``<interface>`` since libvirt 0.9.10.
ROM = LibvirtVersion(0, 9, 10)
#: ``<rom enabled>`` since libvirt 4.3.0.
ROM_ENABLED = LibvirtVersion(4, 3, 0)
#: ``<driver rx_queue_size>`` since libvirt 2.3.0.
RX_QUEUE_SIZE = LibvirtVersion(2, 3, 0)
#: ``<driver tx_queue_size>`` since libvirt 3.7.0.
TX_QUEUE_SIZE = LibvirtVersion(3, 7, 0)
#: ``<driver packed>`` (a virtio option) since libvirt 6.3.0.
PACKED = LibvirtVersion(6, 3, 0)
#: ``<backend tap vhost>`` since libvirt 1.2.9.
BACKEND = LibvirtVersion(1, 2, 9)
#: ``<coalesce>`` since libvirt 3.3.0.
COALESCE = LibvirtVersion(3, 3, 0)
#: User aliases (``<alias name='ua-…'/>``: libvirt drops others) since libvirt 3.9.0.
USER_ALIAS = LibvirtVersion(3, 9, 0)
#: ``<port isolated='yes'/>`` (bridge port isolation) since libvirt 6.1.0.
PORT_ISOLATED = LibvirtVersion(6, 1, 0)
#: ``<teaming>`` (virtio failover with an SR-IOV VF) since libvirt 6.1.0.
TEAMING = LibvirtVersion(6, 1, 0)
#: ``<interface type='vdpa'>`` since libvirt 6.9.0.
VDPA = LibvirtVersion(6, 9, 0)


#: The vif.json keys :func:`version_gates` looks at (absent from most VIFs: a quick way out).
_GATED = frozenset({"trust_guest_rx_filters", "rom", "virtio", "backend", "coalesce", "isolated",
                    "teaming", "alias"})


def version_gates(vif: Vif) -> Iterator[tuple[str, LibvirtVersion]]:
    """The keys of ``vif`` whose XML needs a newer libvirt than the oldest: (JSON path, since).
    A key given for an older libvirt is an error (:func:`check_versions`), never dropped."""
    if not vif.model_fields_set & _GATED:
        return
    given = vif.__dict__  # the fields of its kind (getattr of one it lacks costs pydantic dearly)
    if given.get("trust_guest_rx_filters") is not None:
        yield "$.trust_guest_rx_filters", TRUST_GUEST_RX_FILTERS
    if vif.rom is not None:
        yield ("$.rom", ROM) if vif.rom.enabled else ("$.rom.enabled", ROM_ENABLED)
    virtio = given.get("virtio")
    if virtio is not None:
        for key, since in (("rx_queue_size", RX_QUEUE_SIZE), ("tx_queue_size", TX_QUEUE_SIZE),
                           ("packed", PACKED)):
            if getattr(virtio, key):
                yield f"$.virtio.{key}", since
    if given.get("backend") is not None:
        yield "$.backend", BACKEND
    if given.get("coalesce") is not None:
        yield "$.coalesce", COALESCE
    if given.get("isolated"):
        yield "$.isolated", PORT_ISOLATED
    if vif.teaming_of is not None:
        yield "$.teaming", TEAMING
    if vif.alias is not None:
        yield "$.alias", USER_ALIAS


def check_versions(vif: Vif, options: Options) -> None:
    """Raise :class:`~vifplug.errors.UnsupportedError` naming each key of ``vif`` the target
    libvirt is too old for (the paths are ``$.key``; the CLI prefixes an array's index)."""
    if options.libvirt_version is None or not vif.model_fields_set & _GATED:
        return  # the newest libvirt, or none of the keys: nothing to check (the common case)
    old = [f"{path}: needs libvirt >= {since} (the XML is for libvirt {options.version_text})"
           for path, since in version_gates(vif) if not options.supports(since)]
    if old:
        raise UnsupportedError("; ".join(old))


@dataclass(frozen=True, slots=True)
class Options:
    """What the driver knows about the host: firewalling, and the libvirt the XML is for."""

    #: The host applies firewalling (nwfilter or an iptables driver).
    firewall: bool = False
    #: The libvirt the XML is for; ``None`` means the newest (every feature available).
    libvirt_version: LibvirtVersion | None = None

    def supports(self, since: LibvirtVersion) -> bool:
        """Whether the target libvirt is at least ``since``."""
        return self.libvirt_version is None or self.libvirt_version >= since

    @property
    def version_text(self) -> str:
        return "newest" if self.libvirt_version is None else str(self.libvirt_version)


V = TypeVar("V", bound=Vif)


class Connection(ABC, Generic[V]):
    """One way to connect a guest NIC (a VIF of class ``V``) to the host."""

    #: Registry key, e.g. ``ovs-hybrid``.
    name: ClassVar[str]
    #: The ``vif_type`` values this connection can serve.
    vif_types: ClassVar[frozenset[str]]
    #: One line for people (``vifplug explain``, docs).
    summary: ClassVar[str]
    #: The vif.json ``plug`` value that means this connection (OVS methods only).
    plug_method: ClassVar[str | None] = None
    #: The oldest libvirt whose XML can express this connection (``None``: any).
    min_libvirt: ClassVar[LibvirtVersion | None] = None

    @abstractmethod
    def interface_xml(self, vif: V, options: Options) -> etree._Element:
        """The libvirt ``<interface>`` element for ``vif``."""

    @abstractmethod
    def topology(self, vif: V) -> list[str]:
        """The chain of devices from the guest NIC outwards, for ``vifplug explain``."""

    def plan(self, vif: V, context: PlanContext) -> tuple[Step, ...]:
        """The host steps that make this VIF's host side exist (pure). Default: none."""
        return ()

    def unplan(self, vif: V) -> tuple[Step, ...]:
        """The host steps that remove what :meth:`plan` made (pure). Default: none."""
        return ()

    def ready(self, vif: V, *, started: bool = False) -> tuple[Condition, ...]:
        """What must hold on the host before this VIF carries traffic (:mod:`vifplug.ready`):
        what plug made, and with ``started`` (the guest runs) also what libvirt adds when it
        starts the guest (its TAP on a Linux bridge, the OVS port of a virtualport). Default:
        nothing (macvtap and VFs are libvirt's to make)."""
        return ()

    def __repr__(self) -> str:
        return f"<connection {self.name}>"


def start_interface(vif: Vif, type_: str) -> etree._Element:
    """``<interface type>`` with its ``<mac>``: what every connection begins with; and, for
    the kinds that take it, the guest's ``trustGuestRxFilters``."""
    iface = etree.Element("interface", type=type_)
    trust = vif.__dict__.get("trust_guest_rx_filters")  # the macvtap kinds' and hostdev's field
    if trust is not None:
        iface.set("trustGuestRxFilters", "yes" if trust else "no")
    etree.SubElement(iface, "mac", address=vif.mac)
    return iface


def finish_interface(
    iface: etree._Element,
    vif: GuestNic,
    options: Options,
    *,
    target: str | None,
    bandwidth: Bandwidth | None = None,
    managed_no: bool = False,
    filterref: Filter | None = None,
    coalesce: Coalesce | None = None,
    isolated: bool = False,
) -> etree._Element:
    """Append what follows the source in libvirt's own order: bandwidth, port, target, model,
    driver, backend, filterref, teaming, link, mtu, coalesce, alias, rom (``<mtu>`` only where
    the target libvirt knows it, as always; the newer keys are refused below their version
    instead)."""
    add_bandwidth(iface, bandwidth)
    add_port_isolated(iface, isolated)
    if target is not None:
        if managed_no and options.supports(MANAGED_NO):
            etree.SubElement(iface, "target", dev=target, managed="no")
        else:
            etree.SubElement(iface, "target", dev=target)
    add_model(iface, vif.nic_model)
    add_driver(iface, vif.queues, vif.virtio)
    add_backend(iface, vif.backend if isinstance(vif, TapVif) else None)
    add_filterref(iface, filterref)
    add_teaming(iface, vif.teaming)
    add_link_mtu(iface, vif.link_state, vif.mtu if options.supports(MTU) else None)
    add_coalesce(iface, coalesce)
    add_alias(iface, vif.device_alias)
    add_rom(iface, vif.rom)
    return iface


def guest_hop(vif: Vif) -> str:
    """The first hop of every topology: the guest's NIC."""
    return f"guest NIC {vif.mac}"


def vlan_note(vlan: int | None, trunk: tuple[int, ...] | None) -> str:
    """`` [vlan 100]`` / `` [trunk 10,20]`` / ``""``."""
    if vlan is not None:
        return f" [vlan {vlan}]"
    if trunk is not None:
        return f" [trunk {','.join(map(str, trunk))}]"
    return ""


def ovs_bridge_step(bridge: str, ovs: OvsParams, context: PlanContext) -> Step:
    """Check the OVS bridge exists, or (only when asked) ensure it."""
    if context.create_ovs_bridges:
        return EnsureOvsBridge(bridge, ovs.datapath_type)
    return RequireOvsBridge(bridge)


def ovs_external_ids(vif: Vif, ovs: OvsParams,
                     context: PlanContext) -> tuple[tuple[str, str], ...]:
    """The external_ids Neutron/OVN agents look for on a VIF's OVS interface."""
    ids = [("iface-id", ovs.interface_id), ("iface-status", "active"),
           ("attached-mac", vif.mac)]
    if context.instance_uuid is not None:
        ids.append(("vm-uuid", context.instance_uuid))
    return tuple(ids)
