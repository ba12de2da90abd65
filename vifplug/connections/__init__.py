"""The registry of connection kinds: one module each, one entry per kind, keyed by name.

Adding a kind is adding a module that defines a :class:`~vifplug.connections.base.Connection`
subclass decorated with :func:`register`, and importing it below.
"""

from __future__ import annotations

from typing import TypeVar

from vifplug.connections.base import Connection, Options

__all__ = ["REGISTRY", "Connection", "Options", "register", "serving"]

#: Every connection kind, by name.
REGISTRY: dict[str, Connection] = {}

_C = TypeVar("_C", bound=type[Connection])


def register(cls: _C) -> _C:
    """Class decorator: add one instance of ``cls`` to :data:`REGISTRY` under ``cls.name``."""
    if cls.name in REGISTRY:
        raise ValueError(f"connection {cls.name!r} is registered twice")
    REGISTRY[cls.name] = cls()
    return cls


def serving(registry: dict[str, Connection]) -> dict[str, tuple[Connection, ...]]:
    """vif_type → the connections serving it, in the order the driver asks them."""
    table: dict[str, list[Connection]] = {}
    for connection in sorted(registry.values(), key=lambda c: (c.rank, c.name)):
        for vif_type in connection.vif_types:
            table.setdefault(vif_type, []).append(connection)
    return {vif_type: tuple(found) for vif_type, found in table.items()}


# Populate the registry (each module registers its kinds on import).
from vifplug.connections import (  # noqa: E402
    bridge,
    direct,
    ethernet,
    hostdev,
    hybrid,
    ovs,
    vhostuser,
)

del bridge, direct, ethernet, hostdev, hybrid, ovs, vhostuser
