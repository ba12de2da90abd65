"""GenericVIFDriver: pick the connection for a VIF, render its libvirt XML.

    driver = GenericVIFDriver(firewall=True, libvirt_version="9.0.0")
    for vif in load_vifs(Path("vif.json")):  # a str is JSON text, a Path a file
        print(driver.render(vif))

GenericVIFDriver takes :class:`~vifplug.model.Vif` values; other models (os-vif objects, nova
VIF dicts, Neutron ports) are converted at the edge, by :mod:`vifplug.interop`. The deprecated
fixed-connection drivers live in :mod:`vifplug.legacy`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lxml import etree

from vifplug.connections import REGISTRY, Connection, Options, serving
from vifplug.model import Vif
from vifplug.plan import Plan, PlanContext
from vifplug.selection import Selection, select
from vifplug.version import LibvirtVersion
from vifplug.xml import metadata_element, metadata_entry, tostring

#: Seconds plug and wait give a VIF to become ready, by default.
WAIT_TIMEOUT = 30.0

if TYPE_CHECKING:
    from vifplug.host import Host
    from vifplug.host.apply import Outcome, Progress
    from vifplug.ready import VifReadiness

__all__ = ["GenericVIFDriver", "Selection"]


class _LibvirtConnection(Protocol):
    def getLibVersion(self) -> int: ...


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
        connections: Mapping[str, Connection[Any]] | None = None,
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
        self.connections: dict[str, Connection[Any]] = dict(REGISTRY if connections is None
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
        return select(vif, self.options, self._serving)

    def select(self, vif: Vif) -> Connection[Any]:
        """The connection for ``vif`` (VIF_FORMAT.md, "Choosing the plug method")."""
        return self.selection(vif).connection

    # --- XML ---

    def interface_xml(self, vif: Vif) -> etree._Element:
        """The libvirt ``<interface>`` element for ``vif``."""
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
        connection = self.select(vif)
        context = PlanContext(instance_uuid=instance_uuid,
                              create_ovs_bridges=create_ovs_bridges)
        return Plan(vif.id, connection.name, connection.plan(vif, context))

    def unplan(self, vif: Vif) -> Plan:
        """The host steps that unplug ``vif`` (pure)."""
        connection = self.select(vif)
        return Plan(vif.id, connection.name, connection.unplan(vif))

    def plug(self, vif: Vif, host: Host, *, instance_uuid: str | None = None,
             create_ovs_bridges: bool = False, wait: bool = True,
             timeout: float = WAIT_TIMEOUT) -> Outcome:
        """Make ``vif``'s host side exist: idempotent, and rolled back on failure; then (unless
        ``wait`` is false) wait until it is ready (see :meth:`wait`)."""
        return self.plug_many([vif], host, instance_uuid=instance_uuid,
                              create_ovs_bridges=create_ovs_bridges, wait=wait,
                              timeout=timeout)

    def plug_many(self, vifs: Sequence[Vif], host: Host, *, instance_uuid: str | None = None,
                  create_ovs_bridges: bool = False, progress: Progress | None = None,
                  wait: bool = True, timeout: float = WAIT_TIMEOUT) -> Outcome:
        """Plug many VIFs as one batch: one netlink socket and one OVSDB transaction for all;
        all plugged, or (on failure) the host as it was. The transaction is committed without
        waiting for ovs-vswitchd; with ``wait`` (the default), this then waits until every VIF
        is ready, raising :class:`~vifplug.host.errors.NotReadyError` after ``timeout``
        seconds (what was plugged stays). With ``wait=False`` it returns at once:
        ``outcome.ovs_cfg`` is what :meth:`wait` will wait for ovs-vswitchd to reach."""
        from vifplug.host.apply import apply_plug, vif_locks

        plans = [self.plan(vif, instance_uuid=instance_uuid,
                           create_ovs_bridges=create_ovs_bridges) for vif in vifs]
        with vif_locks([vif.id for vif in vifs], host.scope, *_lock_dir(host)):
            outcome = apply_plug(plans, host, progress=progress)
        if wait:
            self.wait(vifs, host, timeout=timeout, cfg=outcome.ovs_cfg)
        return outcome

    def readiness(self, vifs: Sequence[Vif], host: Host, *,
                  started: bool = False) -> list[VifReadiness]:
        """Where each VIF stands now (:mod:`vifplug.ready`), without waiting."""
        from vifplug.host.ready import check

        return check(host, self._wanted(vifs, started))

    def wait(self, vifs: Sequence[Vif], host: Host, *, timeout: float = WAIT_TIMEOUT,
             started: bool = False, cfg: int | None = None) -> list[VifReadiness]:
        """Wait until each VIF's host side is ready: its devices exist and are up (a Linux
        bridge port forwarding), its OVS Interfaces have an OpenFlow port and no error (on an
        OVN chassis, ovn-controller's flows installed), and ovs-vswitchd has applied ``cfg``
        (default: everything committed when the wait begins). With ``started`` (the guest
        runs), also what libvirt adds when it starts the guest. Waits on OVSDB's and netlink's
        change notifications; raises :class:`~vifplug.host.errors.NotReadyError` naming each
        VIF that is not ready after ``timeout`` seconds and why."""
        from vifplug.host.errors import NotReadyError
        from vifplug.host.ready import wait_ready

        states = wait_ready(host, self._wanted(vifs, started), timeout=timeout, cfg=cfg)
        if not all(state.ready for state in states):
            raise NotReadyError(states, timeout)
        return states

    def _wanted(self, vifs: Sequence[Vif], started: bool) -> list[tuple[str, tuple[Any, ...]]]:
        return [(vif.id, self.select(vif).ready(vif, started=started)) for vif in vifs]

    def unplug(self, vif: Vif, host: Host, *, timeout: float = WAIT_TIMEOUT) -> Outcome:
        """Remove ``vif``'s host side; what is already gone is skipped."""
        return self.unplug_many([vif], host, timeout=timeout)

    def unplug_many(self, vifs: Sequence[Vif], host: Host, *,
                    progress: Progress | None = None,
                    timeout: float = WAIT_TIMEOUT) -> Outcome:
        """Unplug many VIFs: one OVSDB transaction and one netlink request for all devices;
        returns once ovs-vswitchd has applied the transaction too (the ports are gone from the
        switch, not only from the database), or raises
        :class:`~vifplug.host.errors.NotAppliedError` after ``timeout`` seconds."""
        from vifplug.host.apply import apply_unplug, vif_locks

        plans = [self.unplan(vif) for vif in vifs]
        with vif_locks([vif.id for vif in vifs], host.scope, *_lock_dir(host), remove=True):
            return apply_unplug(plans, host, progress=progress, timeout=timeout)

    def metadata_xml(self, vifs: Iterable[Vif]) -> etree._Element:
        """The domain's single ``<vifplug:interfaces>`` metadata element (HOOK_CONTRACT.md):
        one ``<vifplug:interface mac network>`` per VIF, so the guest carries its networks
        (and, for the migration hook, its port identity: interfaceid, 802.1Qbg/Qbh parameters).
        A failover pair's transient VF has none: it shares its partner's MAC (entries are by
        MAC), and the hook leaves it as it is."""
        return metadata_element(metadata_entry(vif) for vif in vifs
                                if vif.teaming_of is None or vif.teaming_of.type != "transient")


def _lock_dir(host: Host) -> tuple[Path, ...]:
    return () if host.lock_dir is None else (host.lock_dir,)
