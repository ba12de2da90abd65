"""GenericVIFDriver: pick the connection for a VIF, render its libvirt XML.

    driver = GenericVIFDriver(firewall=True, libvirt_version="9.0.0")
    for vif in load_vifs(Path("vif.json")):  # a str is JSON text, a Path a file
        print(driver.render(vif))

The deprecated drivers at the end (``LibvirtBridgeDriver``, ...) are GenericVIFDriver with one
connection fixed, kept for callers that still name them.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from lxml import etree

from vifplug.connections import REGISTRY, Connection, Options, serving
from vifplug.errors import UnsupportedError
from vifplug.model import Vif
from vifplug.plan import Plan, PlanContext
from vifplug.version import LibvirtVersion
from vifplug.xml import metadata_element, metadata_entry, tostring

if TYPE_CHECKING:
    from vifplug.host import Host
    from vifplug.host.apply import Outcome, Progress

__all__ = [
    "GenericVIFDriver",
    "LibvirtBridgeDriver",
    "LibvirtHybridOVSBridgeDriver",
    "LibvirtOpenVswitchDriver",
    "LibvirtOpenVswitchVirtualPortDriver",
    "QuantumLinuxBridgeVIFDriver",
    "Selection",
]


class _LibvirtConnection(Protocol):
    def getLibVersion(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Selection:
    """The connection chosen for a VIF, and why (for ``vifplug explain`` and logs)."""

    connection: Connection
    reason: str


class GenericVIFDriver:
    """Selects the connection for each VIF and renders its libvirt ``<interface>``.

    :param firewall: the host firewalls guest traffic (nwfilter or iptables); an OVS VIF whose
        switch does not filter then takes the hybrid path, a bridge VIF gets its ``<filterref>``.
    :param libvirt_version: the libvirt the XML is for (``"9.0.0"``, a tuple, or a
        :class:`~vifplug.version.LibvirtVersion`); default: ``conn.getLibVersion()``, else the
        newest.
    :param conn: a libvirt connection (``libvirt.open(...)``), asked only for its version.
    :param connections: the connection registry to choose from (default: every kind vifplug has).
    """

    def __init__(
        self,
        firewall: bool = False,
        libvirt_version: str | tuple[int, ...] | LibvirtVersion | None = None,
        conn: _LibvirtConnection | None = None,
        *,
        connections: Mapping[str, Connection] | None = None,
    ) -> None:
        version: LibvirtVersion | None
        if isinstance(libvirt_version, str):
            version = LibvirtVersion.parse(libvirt_version)
        elif libvirt_version is not None:
            version = LibvirtVersion(*libvirt_version)
        elif conn is not None:
            version = LibvirtVersion.from_int(conn.getLibVersion())
        else:
            version = None
        self.options = Options(firewall=bool(firewall), libvirt_version=version)
        self.connections: dict[str, Connection] = dict(REGISTRY if connections is None
                                                        else connections)
        self._serving = serving(self.connections)

    @property
    def firewall(self) -> bool:
        return self.options.firewall

    @property
    def libvirt_version(self) -> LibvirtVersion | None:
        """The target libvirt, or ``None`` for the newest."""
        return self.options.libvirt_version

    # --- selection ---

    def selection(self, vif: Vif) -> Selection:
        """The connection for ``vif`` and the reason it was chosen."""
        vif = as_vif(vif)
        for connection in self._serving.get(vif.vif_type, ()):
            reason = connection.choose(vif, self.options)
            if reason is not None:
                return Selection(connection, reason)
        raise UnsupportedError(f"$.vif_type: no connection serves {vif.vif_type!r} with "
                               f"firewall={self.firewall}, libvirt {self.options.version_text}")

    def select(self, vif: Vif) -> Connection:
        """The connection for ``vif`` (VIF_FORMAT.md, "Choosing the plug method")."""
        return self.selection(vif).connection

    # --- XML ---

    def interface_xml(self, vif: Vif) -> etree._Element:
        """The libvirt ``<interface>`` element for ``vif``."""
        vif = as_vif(vif)
        return self.select(vif).interface_xml(vif, self.options)

    def render(self, vif: Vif, *, pretty: bool = True) -> str:
        """The libvirt ``<interface>`` XML for ``vif``, as text."""
        return tostring(self.interface_xml(vif), pretty=pretty)

    def devices_xml(self, vifs: Iterable[Vif]) -> etree._Element:
        """A ``<devices>`` element holding one ``<interface>`` per VIF, in order."""
        devices = etree.Element("devices")
        devices.extend(self.interface_xml(vif) for vif in vifs)
        return devices

    # --- host plans and plugging ---

    def plan(self, vif: Vif, *, instance_uuid: str | None = None,
             create_ovs_bridges: bool = False) -> Plan:
        """The host steps that plug ``vif`` (pure; print it for a dry run)."""
        vif = as_vif(vif)
        connection = self.select(vif)
        context = PlanContext(instance_uuid=instance_uuid,
                              create_ovs_bridges=create_ovs_bridges)
        return Plan(vif.id, connection.name, connection.plan(vif, context))

    def unplan(self, vif: Vif) -> Plan:
        """The host steps that unplug ``vif`` (pure)."""
        vif = as_vif(vif)
        connection = self.select(vif)
        return Plan(vif.id, connection.name, connection.unplan(vif))

    def plug(self, vif: Vif, host: Host, *, instance_uuid: str | None = None,
             create_ovs_bridges: bool = False) -> Outcome:
        """Make ``vif``'s host side exist: idempotent, and rolled back on failure."""
        return self.plug_many([vif], host, instance_uuid=instance_uuid,
                              create_ovs_bridges=create_ovs_bridges)

    def plug_many(self, vifs: Sequence[Vif], host: Host, *, instance_uuid: str | None = None,
                  create_ovs_bridges: bool = False,
                  progress: Progress | None = None) -> Outcome:
        """Plug many VIFs as one batch: one netlink socket and one OVSDB transaction for all;
        all plugged, or (on failure) the host as it was."""
        from vifplug.host.apply import apply_plug, vif_locks

        vifs = [as_vif(vif) for vif in vifs]
        plans = [self.plan(vif, instance_uuid=instance_uuid,
                           create_ovs_bridges=create_ovs_bridges) for vif in vifs]
        with vif_locks([vif.id for vif in vifs], host.scope, *_lock_dir(host)):
            return apply_plug(plans, host, progress=progress)

    def unplug(self, vif: Vif, host: Host) -> Outcome:
        """Remove ``vif``'s host side; what is already gone is skipped."""
        return self.unplug_many([vif], host)

    def unplug_many(self, vifs: Sequence[Vif], host: Host, *,
                    progress: Progress | None = None) -> Outcome:
        """Unplug many VIFs: one OVSDB transaction and one netlink request for all devices."""
        from vifplug.host.apply import apply_unplug, vif_locks

        vifs = [as_vif(vif) for vif in vifs]
        plans = [self.unplan(vif) for vif in vifs]
        with vif_locks([vif.id for vif in vifs], host.scope, *_lock_dir(host), remove=True):
            return apply_unplug(plans, host, progress=progress)

    def metadata_xml(self, vifs: Iterable[Vif]) -> etree._Element:
        """The domain's single ``<vifplug:interfaces>`` metadata element (HOOK_CONTRACT.md):
        one ``<vifplug:interface mac network>`` per VIF, so the guest carries its networks
        (and, for the migration hook, its port identity: interfaceid, 802.1Qbg/Qbh parameters)."""
        return metadata_element(metadata_entry(as_vif(vif)) for vif in vifs)


def as_vif(vif: Any) -> Vif:
    """``vif`` itself, or the :class:`Vif` for an os-vif VIF object (os-vif is imported only
    then): GenericVIFDriver takes either wherever it takes a VIF."""
    if isinstance(vif, Vif):
        return vif
    from vifplug.interop import coerce_vif

    return coerce_vif(vif)


def _lock_dir(host: Host) -> tuple[Path, ...]:
    return () if host.lock_dir is None else (host.lock_dir,)


# --- deprecated drivers with one connection fixed -------------------------------------------------


class _FixedConnectionDriver(GenericVIFDriver):
    """A GenericVIFDriver that always uses one connection (the seed design's driver classes)."""

    fixed: ClassVar[str]
    _warned: ClassVar[bool] = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cls = type(self)
        if not cls._warned:
            cls._warned = True
            warnings.warn(
                f"{cls.__name__} is deprecated: use GenericVIFDriver, which picks the "
                f"connection ({self.fixed!r} here) from the VIF",
                DeprecationWarning, stacklevel=2,
            )
        super().__init__(*args, **kwargs)

    def selection(self, vif: Vif) -> Selection:
        vif = as_vif(vif)
        connection = self.connections[self.fixed]
        if vif.vif_type not in connection.vif_types:
            raise UnsupportedError(
                f"$.vif_type: {type(self).__name__} connects vif_type "
                f"{'/'.join(sorted(connection.vif_types))} only (got {vif.vif_type!r})"
            )
        if vif.plug is not None and vif.plug != connection.plug_method:
            raise UnsupportedError(
                f"$.plug: {type(self).__name__} always uses {self.fixed!r}, which contradicts "
                f"plug {vif.plug!r} (use GenericVIFDriver)"
            )
        needs = connection.min_libvirt
        if needs is not None and not self.options.supports(needs):
            raise UnsupportedError(
                f"{type(self).__name__}: {self.fixed!r} needs libvirt >= {needs} "
                f"(the XML is for libvirt {self.options.version_text})"
            )
        return Selection(connection, f"{type(self).__name__} always uses {self.fixed!r}")


class LibvirtBridgeDriver(_FixedConnectionDriver):
    """Deprecated: a Linux bridge VIF. Use :class:`GenericVIFDriver`."""

    fixed = "bridge"


class QuantumLinuxBridgeVIFDriver(_FixedConnectionDriver):
    """Deprecated: the Quantum-era Linux bridge agent's VIF (a Linux bridge). Use
    :class:`GenericVIFDriver`."""

    fixed = "bridge"


class LibvirtOpenVswitchDriver(_FixedConnectionDriver):
    """Deprecated: an OVS VIF plugged manually (``type='ethernet'``). Use
    :class:`GenericVIFDriver` with ``plug: manual``."""

    fixed = "ovs-manual"


class LibvirtHybridOVSBridgeDriver(_FixedConnectionDriver):
    """Deprecated: an OVS VIF on the hybrid path. Use :class:`GenericVIFDriver` with
    ``firewall=True`` or ``plug: hybrid``."""

    fixed = "ovs-hybrid"


class LibvirtOpenVswitchVirtualPortDriver(_FixedConnectionDriver):
    """Deprecated: an OVS VIF with ``<virtualport type='openvswitch'>``. Use
    :class:`GenericVIFDriver`."""

    fixed = "ovs-virtualport"
