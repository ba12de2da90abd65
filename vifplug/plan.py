"""Plans: the host changes a VIF needs, as pure, printable values that own their host operations.

A connection's ``plan(vif, context)`` returns the steps that make its host side exist, and
``unplan`` the steps that remove it. ``vifplug.host`` applies them (netlink and OVSDB, batched,
idempotent, undone in reverse on failure); ``vifplug plug --dry-run`` and ``vifplug explain``
print them.

Steps come in three phases, applied in this order:

- checks (``Require…``, :class:`Check`): read-only; a failing check means bad input and nothing
  is changed;
- link steps (``Ensure…``/``Delete…`` on net devices, :class:`LinkStep`): netlink, one socket
  per apply;
- OVSDB steps (``…OvsPort``/``…OvsBridge``, :class:`OvsdbStep`): one OVSDB transaction per
  apply, so they either all happen or none does.

Each step kind is one class, and the class is everything about it: its fields and
``describe()`` (what people read), and the hooks its phase asks for — what it checks, how it
applies through netlink, through ovsdbapp's native transaction and through the ``ovs-vsctl``
command line, how each change is undone, which OVSDB rows it reads to know whether it already
holds. The engine in :mod:`vifplug.host.apply` orders the phases, batches, journals and reports;
it never asks what kind a step is, so adding a step kind is adding one class here.

The hooks reach the host only through their arguments (the :class:`~vifplug.host.Host`, a
:class:`~vifplug.host.apply.LinkChanges`, an ovsdbapp API and transaction, a
:class:`~vifplug.host.ovsdb.Snapshot`), and the few host names they need (errors) are imported
when a hook runs: importing this module imports nothing of the host, pyroute2 or ovsdbapp.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    from vifplug.host import Host
    from vifplug.host.apply import LinkChanges
    from vifplug.host.errors import HostError, MissingDeviceError
    from vifplug.host.ovsdb import Snapshot

__all__ = [
    "Check",
    "DeleteLink",
    "DeleteOvsPort",
    "EnsureLinuxBridge",
    "EnsureMaster",
    "EnsureOvsBridge",
    "EnsureOvsPort",
    "EnsureTap",
    "EnsureVeth",
    "EnsureVlanLink",
    "LinkStep",
    "OvsdbStep",
    "Plan",
    "PlanContext",
    "RequireCharDevice",
    "RequireLink",
    "RequireOvsBridge",
    "RequirePci",
    "Step",
]

Phase = Literal["check", "link", "ovsdb"]
#: The OVSDB tables steps read and write.
Table = Literal["Bridge", "Port", "Interface"]


@dataclass(frozen=True, slots=True)
class PlanContext:
    """What a plan needs beyond the VIF: the instance, and whether plug may create OVS bridges."""

    #: The instance (VM) UUID: ``external_ids:vm-uuid`` on the OVS ports vifplug adds.
    instance_uuid: str | None = None
    #: Create a missing OVS bridge instead of refusing (never done silently).
    create_ovs_bridges: bool = False


class Step:
    """One idempotent host change (or check). Subclasses are frozen dataclasses.

    A concrete step derives from its phase's base — :class:`Check`, :class:`LinkStep` or
    :class:`OvsdbStep` — and implements that phase's hooks; the hooks of the other phases are
    refused here with a ``TypeError`` (a plan that puts a step where it does not belong is a
    programming error, caught before the host is touched where possible).
    """

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

    # --- checks ---

    def check(self, host: Host) -> None:
        """Read ``host``; raise :class:`~vifplug.host.MissingDeviceError` when it is not as the
        plan requires. Changes nothing."""
        raise self._not_a("check")

    # --- net devices ---

    def apply_link(self, changes: LinkChanges) -> None:
        """Make this step's state hold through ``changes.netlink``, calling ``changes.undo``
        with the inverse of each change right after making it (a failure later in the step, or
        in a later step, is then undone too). A step that records no undo changed nothing."""
        raise self._not_a("link", "plugged")

    def deletes(self) -> tuple[str, ...]:
        """For unplug: the net devices this step deletes if they exist (an unplug deletes all
        of its steps' devices in one netlink request)."""
        raise self._not_a("link", "unplugged")

    # --- OVSDB ---

    def snapshot_names(self) -> Iterable[tuple[Table, str]]:
        """The OVSDB rows (table, name) :meth:`holds` needs to see."""
        raise self._not_a("ovsdb")

    def holds(self, snapshot: Snapshot) -> bool:
        """Whether this step's state already holds in ``snapshot`` (then it is not applied)."""
        raise self._not_a("ovsdb")

    def ovsdb_native(self, api: Any, txn: Any) -> None:
        """Add this step's commands to an ovsdbapp transaction (``api``: ovsdbapp's
        ``OvsdbIdl`` with vifplug's ``refuse_port_elsewhere`` and ``remove_port``). Commands run
        in ovsdbapp's connection thread when the transaction is sent; one that raises
        :class:`~vifplug.host.HostError` fails the whole transaction, which changes nothing."""
        raise self._not_a("ovsdb")

    def vsctl_commands(self) -> list[list[str]]:
        """The same change as ``ovs-vsctl`` commands (each chained with ``--`` into one
        invocation, one transaction, by the vsctl backend). Pure: tests print them."""
        raise self._not_a("ovsdb")

    def _not_a(self, phase: Phase, how: str | None = None) -> TypeError:
        kind = type(self).__name__
        if how is not None and self.phase == phase:
            return TypeError(f"{kind} cannot be {how}: {self}")
        return TypeError(f"{kind} is {_a(self.phase)} step, not {_a(phase)} step: {self}")


def _a(phase: Phase) -> str:
    return f"an {phase}" if phase == "ovsdb" else f"a {phase}"


class Check(Step):
    """A read-only precondition: :meth:`check`. Run before anything changes; unplug skips it."""

    phase: ClassVar[Phase] = "check"


class LinkStep(Step):
    """A net device change through netlink: :meth:`apply_link` for plug; :meth:`deletes` for
    the steps an unplug runs."""

    phase: ClassVar[Phase] = "link"


class OvsdbStep(Step):
    """A change of OVSDB rows: :meth:`snapshot_names` and :meth:`holds` (idempotency),
    :meth:`ovsdb_native` and :meth:`vsctl_commands` (one per backend; both must write the same
    columns, so they leave identical rows)."""

    phase: ClassVar[Phase] = "ovsdb"


def _host_error(message: str, device: str) -> HostError:
    from vifplug.host.errors import HostError

    return HostError(message, device=device)


def _missing(message: str, device: str) -> MissingDeviceError:
    from vifplug.host.errors import MissingDeviceError

    return MissingDeviceError(message, device=device)


# --- checks -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequireLink(Check):
    """A net device must exist (a Linux bridge, or the NIC under a macvtap)."""

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

    def check(self, host: Host) -> None:
        link = host.netlink.get(self.name)
        where = f" (network namespace {host.netns})" if host.netns else ""
        if link is None:
            raise _missing(f"{self.role} {self.name} does not exist on this host{where}",
                           self.name)
        if self.kind is not None and link.kind != self.kind:
            raise _missing(f"{self.role} {self.name} is a {link.kind or 'plain'} device, not a "
                           f"{self.kind}{where}", self.name)


@dataclass(frozen=True, slots=True)
class RequireOvsBridge(Check):
    """An OVS bridge must exist (vifplug never creates one silently)."""

    bridge: str

    @property
    def device(self) -> str:
        return self.bridge

    def describe(self) -> str:
        return f"check OVS bridge {self.bridge} exists"

    def check(self, host: Host) -> None:
        if not host.ovsdb.bridge_exists(self.bridge):
            raise _missing(f"OVS bridge {self.bridge} does not exist ({host.ovsdb_url}); create "
                           "it, or plug with --create-ovs-bridge", self.bridge)


@dataclass(frozen=True, slots=True)
class RequirePci(Check):
    """A PCI device (an SR-IOV VF) must exist on this host."""

    address: str

    @property
    def device(self) -> str:
        return self.address

    def describe(self) -> str:
        return f"check PCI device {self.address} exists"

    def check(self, host: Host) -> None:
        path = host.pci_devices / self.address
        if not path.exists():
            raise _missing(f"PCI device {self.address} does not exist on this host ({path} is "
                           "missing)", self.address)


@dataclass(frozen=True, slots=True)
class RequireCharDevice(Check):
    """A character device under ``/dev`` must exist (a vDPA VIF's ``/dev/vhost-vdpa-N``)."""

    path: str
    #: What it is for, said in the error when it is missing.
    role: str = "character device"

    @property
    def device(self) -> str:
        return self.path

    def describe(self) -> str:
        return f"check {self.role} {self.path} exists"

    def check(self, host: Host) -> None:
        import stat
        from pathlib import PurePosixPath

        relative = PurePosixPath(self.path).relative_to("/dev")
        path = host.char_devices / relative
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise _missing(f"{self.role} {self.path} does not exist on this host ({path} is "
                           "missing)", self.path) from None
        if not stat.S_ISCHR(mode):
            raise _missing(f"{self.role} {self.path} is not a character device ({path})",
                           self.path)


# --- net devices --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EnsureLinuxBridge(LinkStep):
    """A Linux bridge, up, with these settings.

    The hybrid path's ``qbr`` has forward delay 0 (a port forwards at once: a guest's first
    packets, DHCP among them, are not dropped while STP would listen/learn) and ageing 0 (the
    bridge never learns MACs and floods every frame to its two ports, so a guest whose MAC moves
    away — live migration — is never blackholed by a stale FDB entry; os-vif does the same for
    the same reason), and IPv6 off (the host must not autoconfigure an address on a guest's
    private bridge nor answer on it).
    """

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

    def apply_link(self, changes: LinkChanges) -> None:
        netlink, name = changes.netlink, self.name
        link, created = changes.create(name, lambda: netlink.add_bridge(
            name, forward_delay=self.forward_delay, ageing_time=self.ageing_time))
        if not created:
            if link.kind != "bridge":
                raise _host_error(f"{name} exists but is a {link.kind or 'plain'} device, not a "
                                  "Linux bridge", name)
            wrong_delay = (self.forward_delay is not None
                           and link.forward_delay != self.forward_delay)
            wrong_ageing = self.ageing_time is not None and link.ageing_time != self.ageing_time
            if wrong_delay or wrong_ageing:
                netlink.set_bridge(name, forward_delay=self.forward_delay,
                                   ageing_time=self.ageing_time)
                changes.undo(lambda: netlink.set_bridge(name, forward_delay=link.forward_delay,
                                                        ageing_time=link.ageing_time))
        if self.disable_ipv6 and created:
            netlink.disable_ipv6(name)  # a new device has IPv6 on: no need to ask first
        elif self.disable_ipv6 and netlink.ipv6_disabled(name) is False:
            netlink.disable_ipv6(name)
            changes.undo(lambda: netlink.disable_ipv6(name, False))
        changes.settle(link, created, self.mtu)


@dataclass(frozen=True, slots=True)
class EnsureVlanLink(LinkStep):
    """A VLAN sub-interface ``<parent>.<vlan>``, up."""

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

    def apply_link(self, changes: LinkChanges) -> None:
        netlink = changes.netlink
        link, created = changes.create(
            self.name, lambda: netlink.add_vlan(self.name, self.parent, self.vlan))
        if not created and link.kind != "vlan":
            raise _host_error(f"{self.name} exists but is not a VLAN device", self.name)
        changes.settle(link, created, self.mtu)


@dataclass(frozen=True, slots=True)
class EnsureVeth(LinkStep):
    """A veth pair, both ends up, with this MTU."""

    name: str
    peer: str
    mtu: int | None = None

    @property
    def device(self) -> str:
        return self.name

    def describe(self) -> str:
        mtu = f" (mtu {self.mtu})" if self.mtu is not None else ""
        return f"ensure veth pair {self.name} ═ {self.peer}{mtu}"

    def apply_link(self, changes: LinkChanges) -> None:
        netlink = changes.netlink
        if netlink.get(self.name) is None and netlink.get(self.peer) is not None:
            raise _host_error(f"{self.peer} exists without its veth peer {self.name}; delete it",
                              self.peer)
        link, created = changes.create(self.name,
                                       lambda: netlink.add_veth(self.name, self.peer))
        if not created and (link.kind != "veth" or link.link is None
                            or netlink.name_of(link.link) != self.peer):
            raise _host_error(f"{self.name} exists but is not a veth paired with {self.peer}",
                              self.name)
        peer = netlink.get(self.peer)
        if peer is None:
            raise _host_error(f"veth peer {self.peer} vanished", self.peer)
        # One end at a time: bringing a veth up while its peer is already up fails with ENOTCONN
        # on this kernel if done in the creating request (ENVIRONMENT.md).
        changes.settle(peer, created, self.mtu)
        changes.settle(link, created, self.mtu)


@dataclass(frozen=True, slots=True)
class EnsureTap(LinkStep):
    """A persistent TAP, up: no packet info, vnet_hdr on (QEMU asks for it), multi-queue when the
    guest NIC has more than one queue (the kernel refuses QEMU's open when that flag differs)."""

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

    def apply_link(self, changes: LinkChanges) -> None:
        netlink = changes.netlink
        link, created = changes.create(
            self.name, lambda: netlink.add_tap(self.name, multi_queue=self.multi_queue))
        if not created and (link.kind != "tun"
                            or link.tun_flags != (True, True, self.multi_queue)):
            raise _host_error(
                f"{self.name} exists but is not a TAP with no packet info, vnet_hdr and "
                f"multi_queue={'on' if self.multi_queue else 'off'} (QEMU could not open it); "
                "delete it and plug again", self.name)
        changes.settle(link, created, self.mtu)


@dataclass(frozen=True, slots=True)
class EnsureMaster(LinkStep):
    """``name`` is a port of Linux bridge ``master``."""

    name: str
    master: str

    @property
    def device(self) -> str:
        return self.name

    def describe(self) -> str:
        return f"ensure {self.name} is a port of {self.master}"

    def apply_link(self, changes: LinkChanges) -> None:
        netlink = changes.netlink
        link = netlink.get(self.name)
        master = netlink.get(self.master)
        if link is None or master is None:
            missing = self.name if link is None else self.master
            raise _host_error(f"{missing} does not exist", missing)
        if link.master == master.index:
            return
        netlink.set_master(self.name, master.index)
        changes.undo(lambda: netlink.set_master(self.name, link.master))


@dataclass(frozen=True, slots=True)
class DeleteLink(LinkStep):
    """Delete a net device if it exists (a veth's peer goes with it)."""

    name: str

    @property
    def device(self) -> str:
        return self.name

    def describe(self) -> str:
        return f"delete {self.name} if it exists"

    def deletes(self) -> tuple[str, ...]:
        return (self.name,)


# --- OVSDB --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EnsureOvsBridge(OvsdbStep):
    """An OVS bridge (only when plug is asked to create OVS bridges)."""

    bridge: str
    datapath_type: str | None = None

    @property
    def device(self) -> str:
        return self.bridge

    def describe(self) -> str:
        datapath = f" (datapath {self.datapath_type})" if self.datapath_type else ""
        return f"ensure OVS bridge {self.bridge}{datapath}"

    def snapshot_names(self) -> Iterable[tuple[Table, str]]:
        return (("Bridge", self.bridge),)

    def holds(self, snapshot: Snapshot) -> bool:
        bridge = snapshot.row("Bridge", self.bridge)
        return bridge is not None and (not self.datapath_type
                                       or bridge["datapath_type"] == self.datapath_type)

    def ovsdb_native(self, api: Any, txn: Any) -> None:
        datapath = {"datapath_type": self.datapath_type} if self.datapath_type else {}
        txn.add(api.add_br(self.bridge, may_exist=True, **datapath))

    def vsctl_commands(self) -> list[list[str]]:
        commands = [["--may-exist", "add-br", self.bridge]]
        if self.datapath_type:
            commands.append(["set", "Bridge", self.bridge, f"datapath_type={self.datapath_type}"])
        return commands


@dataclass(frozen=True, slots=True)
class EnsureOvsPort(OvsdbStep):
    """An OVS port on ``bridge`` whose interface carries the VIF's identity.

    ``external_ids`` (iface-id, attached-mac, vm-uuid, iface-status) are what the Neutron and OVN
    agents look for; ``mtu_request`` goes in the same transaction so the port never runs with the
    wrong MTU. ``tag`` makes an access port; ``trunks`` a trunk; neither, a port that carries all
    VLANs. Existing values of these columns are replaced (so a second plug converges).
    """

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

    def interface_columns(self) -> dict[str, Any]:
        """The Interface columns this step owns (replaced on every plug, so a plug converges;
        maps are merged key by key). Optional columns: ``[]`` when unset."""
        return {
            "external_ids": dict(self.external_ids),
            "mtu_request": [] if self.mtu_request is None else self.mtu_request,
            "type": self.interface_type,
            "options": dict(self.options),
        }

    def port_columns(self) -> dict[str, Any]:
        """The Port columns this step owns."""
        return {"tag": [] if self.tag is None else self.tag, "trunks": list(self.trunks)}

    def snapshot_names(self) -> Iterable[tuple[Table, str]]:
        return (("Bridge", self.bridge), ("Port", self.port), ("Interface", self.port))

    def holds(self, snapshot: Snapshot) -> bool:
        bridge = snapshot.row("Bridge", self.bridge)
        port = snapshot.row("Port", self.port)
        iface = snapshot.row("Interface", self.port)
        if bridge is None or port is None or iface is None:
            return False
        return (
            self.port in bridge["ports"]
            and iface["external_ids"].items() >= dict(self.external_ids).items()
            and iface["options"].items() >= dict(self.options).items()
            and iface["mtu_request"] == _optional(self.mtu_request)
            and iface["type"] == self.interface_type
            and port["tag"] == _optional(self.tag)
            and sorted(port["trunks"]) == sorted(self.trunks)
        )

    def ovsdb_native(self, api: Any, txn: Any) -> None:
        # ovsdbapp's add_port(may_exist) takes a port of that name on any bridge as done (and
        # db_set would then rewrite it there); ovs-vsctl refuses. Refuse too.
        txn.add(api.refuse_port_elsewhere(self.bridge, self.port))
        txn.add(api.add_port(self.bridge, self.port, may_exist=True))
        txn.add(api.db_set("Interface", self.port, *self.interface_columns().items()))
        txn.add(api.db_set("Port", self.port, *self.port_columns().items()))

    def vsctl_commands(self) -> list[list[str]]:
        interface = ["set", "Interface", self.port]
        for column, value in self.interface_columns().items():
            if isinstance(value, dict):
                # Maps are merged key by key, as ovsdbapp's db_set merges them.
                interface += [f"{column}:{key}={_vsctl_value(item)}"
                              for key, item in value.items()]
            else:
                interface.append(f"{column}={_vsctl_value(value)}")
        port = ["set", "Port", self.port] + [f"{column}={_vsctl_value(value)}"
                                             for column, value in self.port_columns().items()]
        return [["--may-exist", "add-port", self.bridge, self.port], interface, port]


@dataclass(frozen=True, slots=True)
class DeleteOvsPort(OvsdbStep):
    """Delete an OVS port (from whichever bridge holds it) if it exists."""

    port: str

    @property
    def device(self) -> str:
        return self.port

    def describe(self) -> str:
        return f"delete OVS port {self.port} if it exists"

    def snapshot_names(self) -> Iterable[tuple[Table, str]]:
        return (("Port", self.port),)

    def holds(self, snapshot: Snapshot) -> bool:
        return snapshot.row("Port", self.port) is None

    def ovsdb_native(self, api: Any, txn: Any) -> None:
        txn.add(api.remove_port(self.port))

    def vsctl_commands(self) -> list[list[str]]:
        return [["--if-exists", "del-port", self.port]]


def _optional(value: int | None) -> list[int]:
    """An optional column as OVSDB holds it (and a Snapshot shows it): ``[]`` or ``[value]``."""
    return [] if value is None else [value]


def _vsctl_value(value: Any) -> str:
    """An ovs-vsctl value: ``[]`` for empty, JSON-quoted strings, ``[1,2]`` for sets."""
    if isinstance(value, list):
        return "[" + ",".join(_vsctl_value(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)


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
