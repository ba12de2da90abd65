"""Which connection a VIF gets: VIF_FORMAT.md's "Choosing the plug method", in one place.

Every vif_type but ``ovs`` connects one way. For ``ovs``, :func:`ovs_plug_methods` is the whole
policy (the ``plug`` override, the host's firewall, whether the switch filters the port, the
libvirt version), read top to bottom.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from vifplug.connections.base import OVS_VIRTUALPORT, Connection, Options, check_versions
from vifplug.errors import UnsupportedError
from vifplug.model import OvsVif, Vif

__all__ = ["Selection", "ovs_plug_methods", "select"]


@dataclass(frozen=True, slots=True)
class Selection:
    """The connection chosen for a VIF, and why (for ``vifplug explain`` and logs)."""

    connection: Connection[Any]
    reason: str


def ovs_plug_methods(vif: OvsVif, options: Options) -> Iterator[tuple[str, str]]:
    """The plug methods that fit an OVS VIF, best first, each with the reason."""
    if vif.plug == "virtualport" and not options.supports(OVS_VIRTUALPORT):
        raise UnsupportedError(
            f"$.plug: 'virtualport' needs libvirt >= {OVS_VIRTUALPORT} "
            f"(the XML is for libvirt {options.version_text}); use plug 'manual'")
    if vif.plug is not None:
        yield vif.plug, f"plug {vif.plug!r} is given"
        return
    if options.firewall and not vif.filtered:
        yield "hybrid", ("the host firewalls (firewall=True) and the switch does not filter the "
                         "port, so the guest needs a Linux bridge for the firewall to see its "
                         "traffic")
    if options.supports(OVS_VIRTUALPORT):
        yield "virtualport", (f"libvirt {options.version_text} >= {OVS_VIRTUALPORT} adds OVS "
                              "ports itself"
                              + (" and the switch filters the port" if options.firewall else ""))
    yield "manual", (f"libvirt {options.version_text} < {OVS_VIRTUALPORT} cannot add OVS ports "
                     "(virtualport), so vifplug adds the TAP to OVS itself")


def select(vif: Vif, options: Options,
           serving: Mapping[str, Mapping[str | None, Connection[Any]]]) -> Selection:
    """The connection for ``vif`` among ``serving`` (vif_type → plug method → connection; the
    kinds without a choice under ``None``), and why. A key the target libvirt is too old for, or
    a kind it cannot express, is an :class:`~vifplug.errors.UnsupportedError` naming it."""
    check_versions(vif, options)
    by_method = serving.get(vif.vif_type, {})
    if isinstance(vif, OvsVif):
        for method, reason in ovs_plug_methods(vif, options):
            found = by_method.get(method)
            if found is not None:
                return Selection(found, reason)
    elif None in by_method:
        found = by_method[None]
        if found.min_libvirt is not None and not options.supports(found.min_libvirt):
            raise UnsupportedError(
                f"$.vif_type: {vif.vif_type!r} needs libvirt >= {found.min_libvirt} (the XML is "
                f"for libvirt {options.version_text})")
        return Selection(found, f"vif_type {vif.vif_type!r} always connects this way")
    raise UnsupportedError(f"$.vif_type: no connection serves {vif.vif_type!r} with "
                           f"firewall={options.firewall}, libvirt {options.version_text}")
