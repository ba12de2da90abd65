"""Apply plans to the host: checks first, then net devices, then one OVSDB transaction.

Every step is idempotent: a step whose state already holds changes nothing, so a second plug is
a no-op and a plug after a crash converges. Each change made is journalled with its inverse; if
any step fails, the journal is undone in reverse and the error names the step and device, so the
host is left as it was. Unplug deletes in two requests: one OVSDB transaction for the ports, one
netlink request for all devices (a link group).

``fault`` is the test seam: a callable run before each step (tests raise from it to prove the
rollback of every step of every plan).
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vifplug.host.errors import HostError, MissingDeviceError, StepFailed
from vifplug.plan import (
    DeleteLink,
    EnsureLinuxBridge,
    EnsureMaster,
    EnsureTap,
    EnsureVeth,
    EnsureVlanLink,
    Plan,
    RequireLink,
    RequireOvsBridge,
    RequirePci,
    Step,
)

if TYPE_CHECKING:
    from vifplug.host import Host
    from vifplug.host.netlink import Link, Netlink

__all__ = ["Fault", "Outcome", "Progress", "apply_plug", "apply_unplug", "vif_locks"]

Fault = Callable[[Step], None]
#: Called after each step is done (the CLI's progress bar for batches).
Progress = Callable[[Step], None]
Undo = Callable[[], None]

#: Where per-VIF lock files live: plugs of one VIF are serialised across processes.
LOCK_DIR = Path("/run/vifplug/locks")
PCI_DEVICES = Path("/sys/bus/pci/devices")


@dataclass
class Outcome:
    """What an apply did: the steps that changed the host, and those already satisfied."""

    changed: list[Step] = field(default_factory=list)
    unchanged: list[Step] = field(default_factory=list)

    @property
    def already_done(self) -> bool:
        """Nothing needed changing (e.g. the VIF was already plugged)."""
        return not self.changed


@contextmanager
def vif_locks(vif_ids: Sequence[str], scope: str, lock_dir: Path = LOCK_DIR, *,
              remove: bool = False) -> Iterator[None]:
    """Hold an exclusive lock per VIF (sorted: no deadlock between batches) for one host scope
    (the netns); released on exit, or by the kernel when the process dies. With ``remove``
    (a successful unplug), the lock files are deleted before they are released, so they do not
    pile up: a waiter that then wakes on a deleted file notices and locks the new one."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    paths = [lock_dir / f"{scope}-{vif_id}.lock" for vif_id in sorted(set(vif_ids))]
    with ExitStack() as stack:
        for path in paths:
            stack.callback(os.close, _lock(path))
        yield
        if remove:
            for path in paths:
                path.unlink(missing_ok=True)


def _lock(path: Path) -> int:
    """An fd holding an exclusive flock on the file at ``path`` now (not on an unlinked one)."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # the holder removed it while we waited: take the current one


# --- checks ----------------------------------------------------------------------------------


def _check(step: Step, host: Host) -> None:
    if isinstance(step, RequireLink):
        link = host.netlink.get(step.name)
        if link is None:
            raise MissingDeviceError(f"{step.role} {step.name} does not exist on this host"
                                     f"{_where(host)}", device=step.name)
        if step.kind is not None and link.kind != step.kind:
            raise MissingDeviceError(f"{step.role} {step.name} is a {link.kind or 'plain'} "
                                     f"device, not a {step.kind}{_where(host)}", device=step.name)
    elif isinstance(step, RequireOvsBridge):
        if not host.ovsdb.bridge_exists(step.bridge):
            raise MissingDeviceError(
                f"OVS bridge {step.bridge} does not exist ({host.ovsdb_url}); create it, or "
                "plug with --create-ovs-bridge", device=step.bridge)
    elif isinstance(step, RequirePci):
        if not (PCI_DEVICES / step.address).exists():
            raise MissingDeviceError(f"PCI device {step.address} does not exist on this host "
                                     f"({PCI_DEVICES / step.address} is missing)",
                                     device=step.address)
    else:
        raise TypeError(f"not a check: {step!r}")


def _where(host: Host) -> str:
    return f" (network namespace {host.netns})" if host.netns else ""


# --- link steps: each returns the undo actions of the changes it made (empty: none) --------------


def _create(netlink: Netlink, name: str, create: Callable[[], None]) -> tuple[Link, bool]:
    """Create a device unless it exists; ``(link, created)``. A concurrent creator's EEXIST
    means it exists: use it."""
    from pyroute2 import NetlinkError

    link = netlink.get(name)
    if link is not None:
        return link, False
    try:
        create()
    except NetlinkError as exc:
        if exc.code != errno.EEXIST:
            raise
        found = netlink.get(name)
        if found is None:
            raise
        return found, False
    created = netlink.get(name)
    if created is None:
        raise HostError(f"{name} vanished right after it was created", device=name)
    return created, True


def _settle(netlink: Netlink, link: Link, created: bool, mtu: int | None,
            undo: list[Undo]) -> None:
    """MTU, link group 0 and up, recording the inverse of each change on a device that existed
    before (a device an unplug killed halfway left in its deletion group goes back to 0)."""
    name = link.name
    group = 0 if link.group != 0 else None
    new_mtu = mtu if mtu is not None and link.mtu != mtu else None
    up = True if not link.up else None
    # one request for all three; its inverse, for a device that existed before, another
    netlink.update(name, mtu=new_mtu, up=up, group=group, index=link.index)
    if not created and (group, new_mtu, up) != (None, None, None):
        old = link
        undo.append(lambda: netlink.update(
            name, mtu=old.mtu if new_mtu is not None else None,
            up=False if up is not None else None,
            group=old.group if group is not None else None))


def _ensure_bridge(step: EnsureLinuxBridge, netlink: Netlink, undo: list[Undo]) -> None:
    link, created = _create(netlink, step.name, lambda: netlink.add_bridge(
        step.name, forward_delay=step.forward_delay, ageing_time=step.ageing_time))
    if created:
        undo.append(lambda: _delete(netlink, step.name))
    elif link.kind != "bridge":
        raise HostError(f"{step.name} exists but is a {link.kind or 'plain'} device, not a "
                        "Linux bridge", device=step.name)
    else:
        wrong_delay = step.forward_delay is not None and link.forward_delay != step.forward_delay
        wrong_ageing = step.ageing_time is not None and link.ageing_time != step.ageing_time
        if wrong_delay or wrong_ageing:
            netlink.set_bridge(step.name, forward_delay=step.forward_delay,
                               ageing_time=step.ageing_time)
            undo.append(lambda: netlink.set_bridge(step.name, forward_delay=link.forward_delay,
                                                   ageing_time=link.ageing_time))
    if step.disable_ipv6 and created:
        netlink.disable_ipv6(step.name)  # a new device has IPv6 on: no need to ask first
    elif step.disable_ipv6 and netlink.ipv6_disabled(step.name) is False:
        netlink.disable_ipv6(step.name)
        undo.append(lambda: netlink.disable_ipv6(step.name, False))
    _settle(netlink, link, created, step.mtu, undo)


def _ensure_veth(step: EnsureVeth, netlink: Netlink, undo: list[Undo]) -> None:
    if netlink.get(step.name) is None and netlink.get(step.peer) is not None:
        raise HostError(f"{step.peer} exists without its veth peer {step.name}; delete it",
                        device=step.peer)
    link, created = _create(netlink, step.name, lambda: netlink.add_veth(step.name, step.peer))
    if created:
        undo.append(lambda: _delete(netlink, step.name))
    elif link.kind != "veth" or link.link is None or netlink.name_of(link.link) != step.peer:
        raise HostError(f"{step.name} exists but is not a veth paired with {step.peer}",
                        device=step.name)
    peer = netlink.get(step.peer)
    if peer is None:
        raise HostError(f"veth peer {step.peer} vanished", device=step.peer)
    # One end at a time: bringing a veth up while its peer is already up fails with ENOTCONN
    # on this kernel if done in the creating request (ENVIRONMENT.md).
    _settle(netlink, peer, created, step.mtu, undo)
    _settle(netlink, link, created, step.mtu, undo)


def _ensure_tap(step: EnsureTap, netlink: Netlink, undo: list[Undo]) -> None:
    link, created = _create(netlink, step.name,
                            lambda: netlink.add_tap(step.name, multi_queue=step.multi_queue))
    if created:
        undo.append(lambda: _delete(netlink, step.name))
    elif link.kind != "tun" or link.tun_flags != (True, True, step.multi_queue):
        raise HostError(
            f"{step.name} exists but is not a TAP with no packet info, vnet_hdr and "
            f"multi_queue={'on' if step.multi_queue else 'off'} (QEMU could not open it); "
            "delete it and plug again", device=step.name)
    _settle(netlink, link, created, step.mtu, undo)


def _ensure_vlan(step: EnsureVlanLink, netlink: Netlink, undo: list[Undo]) -> None:
    link, created = _create(netlink, step.name,
                            lambda: netlink.add_vlan(step.name, step.parent, step.vlan))
    if created:
        undo.append(lambda: _delete(netlink, step.name))
    elif link.kind != "vlan":
        raise HostError(f"{step.name} exists but is not a VLAN device", device=step.name)
    _settle(netlink, link, created, step.mtu, undo)


def _ensure_master(step: EnsureMaster, netlink: Netlink, undo: list[Undo]) -> None:
    link = netlink.get(step.name)
    master = netlink.get(step.master)
    if link is None or master is None:
        missing = step.name if link is None else step.master
        raise HostError(f"{missing} does not exist", device=missing)
    if link.master == master.index:
        return
    netlink.set_master(step.name, step.master)
    old_master = link.master
    undo.append(lambda: netlink.set_master_index(step.name, old_master))


def _delete(netlink: Netlink, name: str) -> None:
    netlink.delete(name)


#: Each handler makes its step hold, appending the inverse of every change to ``undo`` as soon
#: as it is made (so a failure halfway through a step is undone too); no change, no entry.
_LINK_STEPS: dict[type[Step], Callable[[Any, Netlink, list[Undo]], None]] = {
    EnsureLinuxBridge: _ensure_bridge,
    EnsureVeth: _ensure_veth,
    EnsureTap: _ensure_tap,
    EnsureVlanLink: _ensure_vlan,
    EnsureMaster: _ensure_master,
}


# --- applying ---------------------------------------------------------------------------------


def apply_plug(plans: Sequence[Plan], host: Host, *, fault: Fault | None = None,
               progress: Progress | None = None) -> Outcome:
    """Make every plan's state hold, or leave the host as it was and raise
    :class:`~vifplug.host.errors.StepFailed` (or a :class:`MissingDeviceError` from a check,
    before anything changed)."""
    steps = [step for plan in plans for step in plan.steps]
    outcome = Outcome()
    for step in steps:  # checks: read only; a failure changes nothing
        if step.phase != "check":
            continue
        try:
            if fault is not None:
                fault(step)
            _check(step, host)
        except MissingDeviceError:
            raise
        except Exception as exc:
            raise StepFailed(step, exc, device=step.device, rolled_back=True) from exc
        outcome.unchanged.append(step)
        if progress is not None:
            progress(step)

    journal: list[tuple[Step, Undo]] = []
    cursor = _Cursor()
    try:
        for step in steps:
            if step.phase != "link":
                continue
            cursor.at = step
            if fault is not None:
                fault(step)
            undo: list[Undo] = []
            try:
                _LINK_STEPS[type(step)](step, host.netlink, undo)
            finally:
                journal.extend((step, action) for action in undo)
            (outcome.changed if undo else outcome.unchanged).append(step)
            if progress is not None:
                progress(step)
        _ovsdb_phase([step for step in steps if step.phase == "ovsdb"], host, outcome, cursor,
                     fault=fault, progress=progress)
    except BaseException as exc:
        errors = _rollback(journal)
        failed = cursor.at if cursor.at is not None else "plug"
        raise StepFailed(failed, exc, device=getattr(failed, "device", None),
                         rolled_back=not errors, undo_errors=errors) from exc
    return outcome


def apply_unplug(plans: Sequence[Plan], host: Host, *, fault: Fault | None = None,
                 progress: Progress | None = None) -> Outcome:
    """Remove what the plans name: OVSDB ports in one transaction, then every device in one
    netlink request. Whatever is already gone is skipped, so a half-plugged or already-unplugged
    VIF finishes cleanly; a failure is reported, and running unplug again finishes the job."""
    steps = [step for plan in plans for step in plan.steps]
    outcome = Outcome()
    ovsdb_steps = [step for step in steps if step.phase == "ovsdb"]
    links = [step for step in steps if isinstance(step, DeleteLink)]
    cursor = _Cursor()
    try:
        _ovsdb_phase(ovsdb_steps, host, outcome, cursor, fault=fault, progress=progress)
        for step in links:
            cursor.at = step
            if fault is not None:
                fault(step)
        if links:
            cursor.at = links[0] if len(links) == 1 else _Transaction(links)
            deleted = set(host.netlink.delete_many(step.name for step in links))
            for step in links:
                (outcome.changed if step.name in deleted else outcome.unchanged).append(step)
            _report(progress, links)
    except BaseException as exc:
        failed = cursor.at if cursor.at is not None else "unplug"
        raise StepFailed(failed, exc, device=getattr(failed, "device", None),
                         rolled_back=False,
                         undo_errors=("unplug does not roll back; run it again to finish",)
                         ) from exc
    return outcome


class _Cursor:
    """Where an apply is (the step, or the batch, that an error is about)."""

    at: Step | _Transaction | None = None


def _ovsdb_phase(steps: Sequence[Step], host: Host, outcome: Outcome, cursor: _Cursor, *,
                 fault: Fault | None, progress: Progress | None) -> None:
    """The OVSDB steps that do not hold yet, in one transaction (all or nothing)."""
    for step in steps:
        cursor.at = step
        if fault is not None:
            fault(step)
    pending = host.ovsdb_pending(steps)
    if pending:
        cursor.at = pending[0] if len(pending) == 1 else _Transaction(pending)
        host.ovsdb.commit(pending)
    outcome.changed.extend(pending)
    outcome.unchanged.extend(step for step in steps if step not in pending)
    _report(progress, steps)


def _report(progress: Progress | None, steps: Sequence[Step]) -> None:
    if progress is not None:
        for step in steps:
            progress(step)


class _Transaction:
    """A batch of steps applied in one request, named in errors as a whole."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self.steps = tuple(steps)
        self.device = ", ".join(step.device for step in self.steps)

    def __str__(self) -> str:
        return f"{len(self.steps)} steps in one request ({self.device})"


def _rollback(journal: list[tuple[Step, Undo]]) -> tuple[str, ...]:
    """Run the undo actions newest first; collect (never raise) what could not be undone."""
    errors: list[str] = []
    for step, undo in reversed(journal):
        try:
            undo()
        except Exception as exc:
            errors.append(f"undo of '{step}': {exc}")
    return tuple(errors)
