"""Plans: the host changes a VIF needs, as pure, printable values.

A connection's ``plan(vif, context)`` returns the steps that make its host side exist, and
``unplan`` the steps that remove it. ``vifplug.host`` applies them (netlink and OVSDB, batched,
idempotent, undone in reverse on failure); ``vifplug plug --dry-run`` and ``vifplug explain``
print them. Nothing here touches the host.

Steps come in three phases, applied in this order:

- checks (``Require…``): read-only; a failing check means bad input and nothing is changed;
- link steps (``Ensure…``/``Delete…`` on net devices): netlink, one socket per apply;
- OVSDB steps (``…OvsPort``/``…OvsBridge``): one OVSDB transaction per apply, so they either all
  happen or none does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

__all__ = [
    "DeleteLink",
    "DeleteOvsPort",
    "EnsureLinuxBridge",
    "EnsureMaster",
    "EnsureOvsBridge",
    "EnsureOvsPort",
    "EnsureTap",
    "EnsureVeth",
    "EnsureVlanLink",
    "Plan",
    "PlanContext",
    "RequireLink",
    "RequireOvsBridge",
    "RequirePci",
    "Step",
]

Phase = Literal["check", "link", "ovsdb"]


@dataclass(frozen=True, slots=True)
class PlanContext:
    """What a plan needs beyond the VIF: the instance, and whether plug may create OVS bridges."""

    #: The instance (VM) UUID: ``external_ids:vm-uuid`` on the OVS ports vifplug adds.
    instance_uuid: str | None = None
    #: Create a missing OVS bridge instead of refusing (never done silently).
    create_ovs_bridges: bool = False


class Step:
    """One idempotent host change (or check). Subclasses are frozen dataclasses."""

    phase: ClassVar[Phase]

    @property
    def device(self) -> str:
        """The device, port or address the step is about (named in errors)."""
        raise NotImplementedError

    def describe(self) -> str:
        """One line for people: ``vifplug plug --dry-run`` prints it."""
        raise NotImplementedError

    def __str__(self) -> str:
        return self.describe()


# --- checks -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequireLink(Step):
    """A net device must exist (a Linux bridge, or the NIC under a macvtap)."""

    phase: ClassVar[Phase] = "check"
    name: str
    #: ``bridge`` when it must be a Linux bridge; ``None`` for any kind.
    kind: str | None = None
    #: What it is for, said in the error when it is missing.
    role: str = "device"

    @property
    def device(self) -> str:
        return self.name

    def describe(self) -> str:
        return f"check {self.role} {self.name} exists"


@dataclass(frozen=True, slots=True)
class RequireOvsBridge(Step):
    """An OVS bridge must exist (vifplug never creates one silently)."""

    phase: ClassVar[Phase] = "check"
    bridge: str

    @property
    def device(self) -> str:
        return self.bridge

    def describe(self) -> str:
        return f"check OVS bridge {self.bridge} exists"


@dataclass(frozen=True, slots=True)
class RequirePci(Step):
    """A PCI device (an SR-IOV VF) must exist on this host."""

    phase: ClassVar[Phase] = "check"
    address: str

    @property
    def device(self) -> str:
        return self.address

    def describe(self) -> str:
        return f"check PCI device {self.address} exists"


# --- net devices --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EnsureLinuxBridge(Step):
    """A Linux bridge, up, with these settings.

    The hybrid path's ``qbr`` has forward delay 0 (a port forwards at once: a guest's first
    packets, DHCP among them, are not dropped while STP would listen/learn) and ageing 0 (the
    bridge never learns MACs and floods every frame to its two ports, so a guest whose MAC moves
    away — live migration — is never blackholed by a stale FDB entry; os-vif does the same for
    the same reason), and IPv6 off (the host must not autoconfigure an address on a guest's
    private bridge nor answer on it).
    """

    phase: ClassVar[Phase] = "link"
    name: str
    mtu: int | None = None
    forward_delay: int | None = None
    ageing_time: int | None = None
    disable_ipv6: bool = False

    @property
    def device(self) -> str:
        return self.name

    def describe(self) -> str:
        extra = []
        if self.mtu is not None:
            extra.append(f"mtu {self.mtu}")
        if self.forward_delay is not None:
            extra.append(f"forward delay {self.forward_delay}")
        if self.ageing_time is not None:
            extra.append(f"ageing {self.ageing_time}")
        if self.disable_ipv6:
            extra.append("IPv6 off")
        return f"ensure Linux bridge {self.name}" + (f" ({', '.join(extra)})" if extra else "")


@dataclass(frozen=True, slots=True)
class EnsureVlanLink(Step):
    """A VLAN sub-interface ``<parent>.<vlan>``, up."""

    phase: ClassVar[Phase] = "link"
    name: str
    parent: str
    vlan: int
    mtu: int | None = None

    @property
    def device(self) -> str:
        return self.name

    def describe(self) -> str:
        mtu = f", mtu {self.mtu}" if self.mtu is not None else ""
        return f"ensure VLAN device {self.name} (vlan {self.vlan} on {self.parent}{mtu})"


@dataclass(frozen=True, slots=True)
class EnsureVeth(Step):
    """A veth pair, both ends up, with this MTU."""

    phase: ClassVar[Phase] = "link"
    name: str
    peer: str
    mtu: int | None = None

    @property
    def device(self) -> str:
        return self.name

    def describe(self) -> str:
        mtu = f" (mtu {self.mtu})" if self.mtu is not None else ""
        return f"ensure veth pair {self.name} ═ {self.peer}{mtu}"


@dataclass(frozen=True, slots=True)
class EnsureTap(Step):
    """A persistent TAP, up: no packet info, vnet_hdr on (QEMU asks for it), multi-queue when the
    guest NIC has more than one queue (the kernel refuses QEMU's open when that flag differs)."""

    phase: ClassVar[Phase] = "link"
    name: str
    mtu: int | None = None
    multi_queue: bool = False

    @property
    def device(self) -> str:
        return self.name

    def describe(self) -> str:
        extra = ["vnet_hdr", "no pi"]
        if self.multi_queue:
            extra.append("multi-queue")
        if self.mtu is not None:
            extra.append(f"mtu {self.mtu}")
        return f"ensure TAP {self.name} ({', '.join(extra)})"


@dataclass(frozen=True, slots=True)
class EnsureMaster(Step):
    """``name`` is a port of Linux bridge ``master``."""

    phase: ClassVar[Phase] = "link"
    name: str
    master: str

    @property
    def device(self) -> str:
        return self.name

    def describe(self) -> str:
        return f"ensure {self.name} is a port of {self.master}"


@dataclass(frozen=True, slots=True)
class DeleteLink(Step):
    """Delete a net device if it exists (a veth's peer goes with it)."""

    phase: ClassVar[Phase] = "link"
    name: str

    @property
    def device(self) -> str:
        return self.name

    def describe(self) -> str:
        return f"delete {self.name} if it exists"


# --- OVSDB --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EnsureOvsBridge(Step):
    """An OVS bridge (only when plug is asked to create OVS bridges)."""

    phase: ClassVar[Phase] = "ovsdb"
    bridge: str
    datapath_type: str | None = None

    @property
    def device(self) -> str:
        return self.bridge

    def describe(self) -> str:
        datapath = f" (datapath {self.datapath_type})" if self.datapath_type else ""
        return f"ensure OVS bridge {self.bridge}{datapath}"


@dataclass(frozen=True, slots=True)
class EnsureOvsPort(Step):
    """An OVS port on ``bridge`` whose interface carries the VIF's identity.

    ``external_ids`` (iface-id, attached-mac, vm-uuid, iface-status) are what the Neutron and OVN
    agents look for; ``mtu_request`` goes in the same transaction so the port never runs with the
    wrong MTU. ``tag`` makes an access port; ``trunks`` a trunk; neither, a port that carries all
    VLANs. Existing values of these columns are replaced (so a second plug converges).
    """

    phase: ClassVar[Phase] = "ovsdb"
    bridge: str
    port: str
    external_ids: tuple[tuple[str, str], ...] = ()
    mtu_request: int | None = None
    tag: int | None = None
    trunks: tuple[int, ...] = ()
    #: Interface type: ``""`` for a kernel device; ``dpdkvhostuserclient`` for vhost-user.
    interface_type: str = ""
    #: Interface ``options`` (e.g. ``vhost-server-path``).
    options: tuple[tuple[str, str], ...] = ()

    @property
    def device(self) -> str:
        return self.port

    def describe(self) -> str:
        extra = [f"{k}={v}" for k, v in self.external_ids]
        if self.interface_type:
            extra.insert(0, f"type={self.interface_type}")
        extra += [f"options:{k}={v}" for k, v in self.options]
        if self.mtu_request is not None:
            extra.append(f"mtu_request={self.mtu_request}")
        if self.tag is not None:
            extra.append(f"tag={self.tag}")
        if self.trunks:
            extra.append(f"trunks={','.join(map(str, self.trunks))}")
        return f"ensure OVS port {self.port} on {self.bridge} ({', '.join(extra)})"


@dataclass(frozen=True, slots=True)
class DeleteOvsPort(Step):
    """Delete an OVS port (from whichever bridge holds it) if it exists."""

    phase: ClassVar[Phase] = "ovsdb"
    port: str

    @property
    def device(self) -> str:
        return self.port

    def describe(self) -> str:
        return f"delete OVS port {self.port} if it exists"


@dataclass(frozen=True, slots=True)
class Plan:
    """The steps for one VIF, in order; printable."""

    vif_id: str
    connection: str
    steps: tuple[Step, ...]

    def __str__(self) -> str:
        lines = [f"VIF {self.vif_id} ({self.connection}):"]
        lines += [f"  {number}. {step.describe()}" for number, step in enumerate(self.steps, 1)]
        if not self.steps:
            lines.append("  nothing to do on this host")
        return "\n".join(lines)
