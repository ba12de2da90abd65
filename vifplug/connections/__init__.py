"""The connection kinds: one module each, listed once in :data:`CONNECTIONS`.

Adding a kind is adding a module that defines a :class:`~vifplug.connections.base.Connection`
subclass, and one entry below. Which connection a VIF gets is :func:`vifplug.selection.select`.
"""

from __future__ import annotations

from typing import Any

from vifplug.connections.base import Connection, Options
from vifplug.connections.bridge import LinuxBridge
from vifplug.connections.direct import Direct, Qbg, Qbh
from vifplug.connections.ethernet import Ethernet
from vifplug.connections.hostdev import HostDev
from vifplug.connections.hybrid import OvsHybrid
from vifplug.connections.ovs import OvsManual, OvsVirtualPort
from vifplug.connections.vhostuser import VhostUser

__all__ = ["CONNECTIONS", "REGISTRY", "Connection", "Options", "serving"]

#: Every connection kind vifplug has, in the order explain and the docs list them.
CONNECTIONS: tuple[Connection[Any], ...] = (
    LinuxBridge(), OvsHybrid(), OvsVirtualPort(), OvsManual(), Qbg(), Qbh(), Direct(),
    Ethernet(), VhostUser(), HostDev(),
)
#: The same, by name.
REGISTRY: dict[str, Connection[Any]] = {connection.name: connection for connection in CONNECTIONS}
assert len(REGISTRY) == len(CONNECTIONS), "two connections share a name"  # noqa: S101


def serving(registry: dict[str, Connection[Any]]) -> dict[str, tuple[Connection[Any], ...]]:
    """vif_type → the connections of ``registry`` serving it."""
    table: dict[str, list[Connection[Any]]] = {}
    for connection in registry.values():
        for vif_type in connection.vif_types:
            table.setdefault(vif_type, []).append(connection)
    return {vif_type: tuple(found) for vif_type, found in table.items()}
