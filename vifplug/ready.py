"""When a plugged VIF is *ready*: the conditions its host side must meet, as pure values.

A plug commits its changes and returns; readiness is its own question (``GenericVIFDriver.wait``,
``vifplug wait``), so that many plugs in flight share one ovs-vswitchd reconfiguration. Each
connection says what ready means for its VIFs (:meth:`Connection.ready`); ``vifplug.host.ready``
watches the host until every condition holds, or says why one does not.

- :class:`LinkReady`: a net device exists and is up; named with its Linux bridge, it is also a
  port of that bridge in the forwarding state (and, when asked, an isolated port).
- :class:`OvsPortReady`: an OVS Interface exists, ovs-vswitchd gave it an OpenFlow port (``ofport``
  ≥ 1) and no ``error``; on an OVN chassis (``Open_vSwitch`` has ``external_ids:ovn-remote``),
  ovn-controller has installed its flows (``external_ids:ovn-installed="true"``).

Whatever the conditions, a VIF with an OVS port is ready only once ovs-vswitchd has applied the
configuration the plug committed (``cur_cfg`` ≥ the plug's ``next_cfg``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Condition", "LinkReady", "OvsPortReady", "VifReadiness"]


@dataclass(frozen=True, slots=True)
class LinkReady:
    """``name`` exists and is up; with ``bridge``, it is a forwarding port of that bridge (an
    isolated one with ``isolated``)."""

    name: str
    bridge: str | None = None
    #: The bridge port must be isolated (``<port isolated='yes'/>``, set by libvirt).
    isolated: bool = False

    def describe(self) -> str:
        where = f" and forwarding on {self.bridge}" if self.bridge else ""
        isolated = ", isolated" if self.bridge and self.isolated else ""
        return f"{self.name} up{where}{isolated}"


@dataclass(frozen=True, slots=True)
class OvsPortReady:
    """The OVS Interface ``port`` has an OpenFlow port and no error (and, on an OVN chassis,
    ovn-controller's flows)."""

    port: str

    def describe(self) -> str:
        return f"OVS port {self.port} has an OpenFlow port"


Condition = LinkReady | OvsPortReady


@dataclass(frozen=True, slots=True)
class VifReadiness:
    """Where one VIF stands: ready, or the reasons it is not (one line each)."""

    vif_id: str
    conditions: tuple[Condition, ...]
    #: Why it is not ready; empty when it is.
    reasons: tuple[str, ...] = ()
    #: What was read, per device: ``{"link": {"up", "master", "port_state", "isolated"} | None,
    #: "ovs":
    #: {"ofport", "error", "ovn_installed"} | None}`` (each key only when a condition reads it;
    #: ``None``: no such device or row), for ``--json``.
    details: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return not self.reasons

    def to_dict(self) -> dict[str, Any]:
        """The ``vifplug wait --json`` object of this VIF (docs/src/plugging.md)."""
        return {"id": self.vif_id, "ready": self.ready, "reasons": list(self.reasons),
                "conditions": [condition.describe() for condition in self.conditions],
                "devices": self.details}
