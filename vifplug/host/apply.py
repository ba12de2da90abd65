"""Apply plans to the host: checks first, then net devices, then one OVSDB transaction.

Every step is idempotent: a step whose state already holds changes nothing, so a second plug is
a no-op and a plug after a crash converges. Each change made is journalled with its inverse; if
any step fails, the journal is undone in reverse and the error names the step and device, so the
host is left as it was. Unplug deletes in two requests: one OVSDB transaction for the ports, one
netlink request for all devices (a link group).

This module is the engine only: phases, batching, the undo journal, what an error names. What a
step does is the step's own (:class:`vifplug.plan.Step`'s hooks); the engine never asks what kind
a step is. Before each step it runs the faults tests inject (:mod:`vifplug.host.faults`).
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from vifplug.host import faults
from vifplug.host.errors import (
    CommitTimeout,
    HostError,
    MissingDeviceError,
    NotAppliedError,
    StepFailed,
)
from vifplug.plan import Plan, Step

if TYPE_CHECKING:
    from vifplug.host import Host
    from vifplug.host.netlink import Link, Netlink

__all__ = ["LinkChanges", "Outcome", "Progress", "apply_gc", "apply_plug", "apply_unplug",
           "vif_locks"]

#: Called after each step is done (the CLI's progress bar for batches).
Progress = Callable[[Step], None]
#: The inverse of one change (what it returns is ignored).
Undo = Callable[[], object]

#: Where per-VIF lock files live: plugs of one VIF are serialised across processes.
LOCK_DIR = Path("/run/vifplug/locks")


@dataclass
class Outcome:
    """What an apply did: the steps that changed the host, and those already satisfied."""

    changed: list[Step] = field(default_factory=list)
    unchanged: list[Step] = field(default_factory=list)
    #: The ``next_cfg`` the OVSDB transaction committed without waiting for ovs-vswitchd
    #: (readiness waits for ``cur_cfg`` to reach it); ``None``: nothing to wait for.
    ovs_cfg: int | None = None

    @property
    def already_done(self) -> bool:
        """Nothing needed changing (e.g. the VIF was already plugged)."""
        return not self.changed


@contextmanager
def vif_locks(vif_ids: Sequence[str], scope: str, lock_dir: Path = LOCK_DIR, *,
              remove: bool | Collection[str] = False) -> Iterator[None]:
    """Hold an exclusive lock per VIF (sorted: no deadlock between batches) for one host scope
    (the netns), touching each lock file (its mtime: the VIF's last plug or unplug); released
    on exit, or by the kernel when the process dies. With ``remove``
    (a successful unplug), the lock files are deleted before they are released, so they do not
    pile up: a waiter that then wakes on a deleted file notices and locks the new one.
    ``remove`` may also name the VIF ids whose lock files go (``vifplug gc``: the VIFs it
    removed, not those it repaired)."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    paths = [lock_dir / f"{scope}-{vif_id}.lock" for vif_id in sorted(set(vif_ids))]
    with ExitStack() as stack:
        for path in paths:
            fd = _lock(path)
            stack.callback(os.close, fd)
            # its mtime says when the VIF was last plugged or unplugged: `vifplug gc` leaves
            # alone what a plug touched less than --older-than seconds ago
            os.utime(fd)
        yield
        if remove:
            gone = set(vif_ids) if remove is True else set(remove)
            for vif_id, path in zip(sorted(set(vif_ids)), paths, strict=True):
                if vif_id in gone:
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


# --- link steps' view of the host ----------------------------------------------------------


class LinkChanges:
    """What a link step's :meth:`~vifplug.plan.Step.apply_link` works with: the netlink socket,
    and the journal its changes' inverses go into (plus the two moves most steps make).

    A step records the inverse of each change with :meth:`undo` as soon as the change is made,
    so a failure halfway through the step is undone too; a step that records nothing changed
    nothing (the outcome counts it as already holding).
    """

    def __init__(self, netlink: Netlink, step: Step, journal: list[tuple[Step, Undo]]) -> None:
        self.netlink = netlink
        self._step = step
        self._journal = journal
        #: Whether the step recorded a change.
        self.changed = False

    def undo(self, action: Undo) -> None:
        """Journal ``action`` as the inverse of a change just made."""
        self._journal.append((self._step, action))
        self.changed = True

    def create(self, name: str, make: Callable[[], None]) -> tuple[Link, bool]:
        """The device ``name`` — found, or made by ``make`` (and journalled: its inverse is its
        deletion): ``(link, created)``. A concurrent creator's EEXIST means it exists: use it."""
        from pyroute2 import NetlinkError

        netlink = self.netlink
        link = netlink.get(name)
        if link is not None:
            return link, False
        try:
            make()
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise
            found = netlink.get(name)
            if found is None:
                raise
            return found, False
        self.undo(lambda: netlink.delete(name))
        created = netlink.get(name)
        if created is None:
            raise HostError(f"{name} vanished right after it was created", device=name)
        return created, True

    def settle(self, link: Link, created: bool, mtu: int | None) -> None:
        """MTU, link group 0 and up, recording the inverse of each change on a device that
        existed before (a device an unplug killed halfway left in its deletion group goes back
        to 0). One request for all three; its inverse, for a device that existed, another."""
        name = link.name
        group = 0 if link.group != 0 else None
        new_mtu = mtu if mtu is not None and link.mtu != mtu else None
        up = True if not link.up else None
        netlink = self.netlink
        netlink.update(name, mtu=new_mtu, up=up, group=group, index=link.index)
        if not created and (group, new_mtu, up) != (None, None, None):
            self.undo(lambda: netlink.update(
                name, mtu=link.mtu if new_mtu is not None else None,
                up=False if up is not None else None,
                group=link.group if group is not None else None))


def delete_in_one_request(netlink: Netlink, names: Iterable[str]) -> list[str]:
    """Delete every existing device of ``names`` with one request; return the ones that
    existed.

    The devices are moved to a link group of their own — a number drawn for this request, so
    concurrent unplugs never share one — and the group is deleted at once, so the kernel's
    per-device waits overlap (ENVIRONMENT.md: ~34 ms per VIF instead of ~72). A device left in
    such a group by a killed unplug is put back in group 0 by plug (:meth:`LinkChanges.settle`).
    """
    from pyroute2 import NetlinkError

    group = secrets.randbelow(2**31 - 2) + 1
    present = []
    for name in names:
        try:
            netlink.update(name, group=group)
        except NetlinkError as exc:
            if exc.code == errno.ENODEV:
                continue
            raise
        present.append(name)
    if present:
        try:
            netlink.delete_group(group)
        except NetlinkError as exc:
            if exc.code != errno.ENODEV:  # gone already: deleted with a peer, or by others
                raise
    return present


# --- applying ---------------------------------------------------------------------------------


def apply_plug(plans: Sequence[Plan], host: Host, *,
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
            faults.before(host, step)
            step.check(host)
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
            faults.before(host, step)
            changes = LinkChanges(host.netlink, step, journal)
            step.apply_link(changes)
            (outcome.changed if changes.changed else outcome.unchanged).append(step)
            if progress is not None:
                progress(step)
        _ovsdb_phase([step for step in steps if step.phase == "ovsdb"], host, outcome, cursor,
                     progress=progress)
    except BaseException as exc:
        errors = _rollback(journal)
        failed = cursor.at if cursor.at is not None else "plug"
        remains = ("OVSDB may have committed the transaction after all, and then holds its "
                   "ports: unplug removes them") if isinstance(exc, CommitTimeout) else None
        raise StepFailed(failed, exc, device=getattr(failed, "device", None),
                         rolled_back=not errors, undo_errors=errors, remains=remains) from exc
    return outcome


def apply_unplug(plans: Sequence[Plan], host: Host, *, progress: Progress | None = None,
                 timeout: float = 30.0) -> Outcome:
    """Remove what the plans name: OVSDB ports in one transaction, then every device in one
    netlink request, then wait (up to ``timeout`` seconds) until ovs-vswitchd has applied the
    transaction — while the kernel deletes the devices, not before. Whatever is already gone is
    skipped, so a half-plugged or already-unplugged VIF finishes cleanly; a failure is
    reported, and running unplug again finishes the job; ovs-vswitchd not applying it in time
    is a :class:`NotAppliedError` (the unplug itself is done). (Checks are skipped: unplug
    never refuses. A link step that deletes nothing is a ``TypeError``, raised before anything
    changes.)"""
    steps = [step for plan in plans for step in plan.steps]
    outcome = Outcome()
    ovsdb_steps = [step for step in steps if step.phase == "ovsdb"]
    links = [(step, step.deletes()) for step in steps if step.phase == "link"]
    cursor = _Cursor()
    try:
        _ovsdb_phase(ovsdb_steps, host, outcome, cursor, progress=progress)
        for step, _ in links:
            cursor.at = step
            faults.before(host, step)
        if links:
            cursor.at = links[0][0] if len(links) == 1 else _Transaction(
                [step for step, _ in links])
            deleted = set(delete_in_one_request(
                host.netlink, [name for _, names in links for name in names]))
            for step, names in links:
                (outcome.changed if deleted & set(names) else outcome.unchanged).append(step)
            _report(progress, [step for step, _ in links])
    except BaseException as exc:
        failed = cursor.at if cursor.at is not None else "unplug"
        raise StepFailed(failed, exc, device=getattr(failed, "device", None),
                         rolled_back=False,
                         undo_errors=("unplug does not roll back; run it again to finish",)
                         ) from exc
    target = outcome.ovs_cfg
    if target is None and ovsdb_steps:
        # nothing left to remove from OVSDB: an earlier unplug (one that timed out waiting, or
        # was killed) removed it; its ports are gone from the switch once ovs-vswitchd has
        # applied what is committed, so that is what this one waits for
        switch = host.ovsdb_reader.switch_state()
        if switch is not None and switch.cur_cfg < switch.next_cfg:
            target = switch.next_cfg
    if target is not None:
        from vifplug.host.ready import wait_applied

        cur_cfg = wait_applied(host, target, timeout=timeout)
        if cur_cfg is not None and cur_cfg < target:
            raise NotAppliedError(target, cur_cfg, timeout)
    return outcome


class _Cursor:
    """Where an apply is (the step, or the batch, that an error is about)."""

    at: Step | _Transaction | None = None


def _ovsdb_phase(steps: Sequence[Step], host: Host, outcome: Outcome, cursor: _Cursor, *,
                 progress: Progress | None) -> None:
    """The OVSDB steps that do not hold yet, in one transaction (all or nothing; shared with
    concurrent callers' steps, :meth:`Host.commit`); with ``wait`` (unplug), until ovs-vswitchd
    has applied it."""
    for step in steps:
        cursor.at = step
        faults.before(host, step)
    pending = host.ovsdb_pending(steps)
    if pending:
        cursor.at = pending[0] if len(pending) == 1 else _Transaction(pending)
        outcome.ovs_cfg = host.commit(pending)
    outcome.changed.extend(pending)
    sent = {id(step) for step in pending}
    outcome.unchanged.extend(step for step in steps if id(step) not in sent)
    _report(progress, steps)


def _report(progress: Progress | None, steps: Sequence[Step]) -> None:
    if progress is not None:
        for step in steps:
            progress(step)


#: How many devices an error about a batch names before "and N more".
SHOWN_DEVICES = 3


class _Transaction:
    """A batch of steps applied in one request, named in errors as a whole."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self.steps = tuple(steps)
        self.device = ", ".join(step.device for step in self.steps)

    def __str__(self) -> str:
        names = [step.device for step in self.steps]
        shown = ", ".join(names[:SHOWN_DEVICES])
        more = f" and {len(names) - SHOWN_DEVICES} more" if len(names) > SHOWN_DEVICES else ""
        return f"{len(self.steps)} steps in one request ({shown}{more})"


def _rollback(journal: list[tuple[Step, Undo]]) -> tuple[str, ...]:
    """Run the undo actions newest first; collect (never raise) what could not be undone."""
    errors: list[str] = []
    for step, undo in reversed(journal):
        try:
            undo()
        except Exception as exc:
            errors.append(f"undo of '{step}': {exc}")
    return tuple(errors)


def apply_gc(steps: Sequence[Step], undo: Sequence[Step], host: Host) -> Outcome:
    """Apply ``vifplug gc``'s plan (:class:`vifplug.gc.GcPlan`) all or nothing: its OVSDB steps
    (orphan ports deleted, mismatched ports repaired) in one transaction, then every orphan
    device deleted in one netlink request. If the deletion fails, the devices already moved
    into the deletion's link group go back to group 0 and ``undo`` (OVSDB steps that put back
    what the transaction changed) is committed: the host is as it was, and the error says so.
    """
    outcome = Outcome()
    ovsdb_steps = [step for step in steps if step.phase == "ovsdb"]
    links = [step for step in steps if step.phase == "link"]
    cursor = _Cursor()
    try:
        _ovsdb_phase(ovsdb_steps, host, outcome, cursor, progress=None)
    except BaseException as exc:  # one transaction: nothing changed
        failed = cursor.at if cursor.at is not None else "gc"
        raise StepFailed(failed, exc, device=getattr(failed, "device", None),
                         rolled_back=True) from exc
    moved: list[str] = []
    try:
        for step in links:
            cursor.at = step
            faults.before(host, step)
        if links:
            from pyroute2 import NetlinkError

            cursor.at = links[0] if len(links) == 1 else _Transaction(links)
            group = secrets.randbelow(2**31 - 2) + 1
            for name in [name for step in links for name in step.deletes()]:
                try:
                    host.netlink.update(name, group=group)
                except NetlinkError as exc:
                    if exc.code == errno.ENODEV:
                        continue  # gone already (a veth's peer deleted with it)
                    raise
                moved.append(name)
            if moved:
                try:
                    host.netlink.delete_group(group)
                except NetlinkError as exc:
                    if exc.code != errno.ENODEV:
                        raise
            outcome.changed.extend(links)
    except BaseException as exc:
        errors = []
        for name in moved:
            try:
                host.netlink.update(name, group=0)
            except Exception as again:
                errors.append(f"put {name} back in link group 0: {again}")
        changed = {id(step) for step in outcome.changed}
        if any(id(step) in changed for step in ovsdb_steps) and undo:
            try:
                host.commit(list(undo))
            except Exception as again:
                errors.append(f"undo of the OVSDB transaction: {again}")
        failed = cursor.at if cursor.at is not None else "gc"
        raise StepFailed(failed, exc, device=getattr(failed, "device", None),
                         rolled_back=not errors, undo_errors=tuple(errors)) from exc
    return outcome
