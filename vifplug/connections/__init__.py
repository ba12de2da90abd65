"""The connection kinds: one module each, listed once in :data:`CONNECTIONS`.

Adding a kind is adding a module that defines a :class:`~vifplug.connections.base.Connection`
subclass, and one entry below. Which connection a VIF gets is :func:`vifplug.selection.select`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vifplug.connections.base import Connection, Options
from vifplug.connections.bridge import LinuxBridge
from vifplug.connections.direct import Direct, Qbg, Qbh
from vifplug.connections.ethernet import Ethernet
from vifplug.connections.hostdev import HostDev
from vifplug.connections.hybrid import OvsHybrid
from vifplug.connections.ovs import OvsManual, OvsVirtualPort
from vifplug.connections.vdpa import Vdpa
from vifplug.connections.vhostuser import VhostUser

__all__ = ["CONNECTIONS", "REGISTRY", "Connection", "Options", "serving"]

#: Every connection kind vifplug has, in the order explain and the docs list them.
CONNECTIONS: tuple[Connection[Any], ...] = (
    LinuxBridge(), OvsHybrid(), OvsVirtualPort(), OvsManual(), Qbg(), Qbh(), Direct(),
    Ethernet(), VhostUser(), HostDev(), Vdpa(),
)
#: The same, by name.
REGISTRY: dict[str, Connection[Any]] = {connection.name: connection for connection in CONNECTIONS}
assert len(REGISTRY) == len(CONNECTIONS), "two connections share a name"  # noqa: S101


def serving(registry: Mapping[str, Connection[Any]]
            ) -> dict[str, dict[str | None, Connection[Any]]]:
    """vif_type → plug method → the connection of ``registry`` serving it (``None``: the kinds
    that connect one way). Two connections for one vif_type and method are an error."""
    table: dict[str, dict[str | None, Connection[Any]]] = {}
    for connection in registry.values():
        for vif_type in connection.vif_types:
            methods = table.setdefault(vif_type, {})
            if connection.plug_method in methods:
                raise ValueError(f"connections {methods[connection.plug_method].name!r} and "
                                 f"{connection.name!r} both serve vif_type {vif_type!r}"
                                 + (f" with plug {connection.plug_method!r}"
                                    if connection.plug_method else ""))
            methods[connection.plug_method] = connection
    return table
