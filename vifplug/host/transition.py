"""``vifplug host apply --guests=move``: a switch transition with guests running, one step.

A host moving its networks between switch types (Linux bridges ⇄ OVS) while guests run on them
cannot be one ``host apply`` plan: ``host apply`` refuses to remove a bridge that still holds a
guest's TAP, and an uplink NIC can be in one switch only. So the transition is three phases,
rolled back as a whole:

1. **build** (:func:`vifplug.hostnet.plan_host` with ``keep``): the new switch's bridges and
   devices, while the old bridges that hold guests stay as they are, uplink included;
2. **uplink** (``keep`` with ``keep_uplinks=False``): the uplink leaves the old bridge (which
   stays, with its guests) for the new switch: the moment traffic switches;
3. **guests** (:func:`vifplug.guests.move_guests`): each running guest's interfaces on the
   moving networks move to the new switch through libvirt: a live device update (a Linux
   bridge → OVS move by the hybrid path: vifplug plugs the interface's qbr/qvb/qvo on the new
   OVS bridge and libvirt re-points the TAP onto its qbr; back, the TAP onto the Linux bridge
   and the hybrid path removed), or, with ``hybrid=False`` or where no update can do it, a
   save + restore with the rewritten definition. libvirt runs the qemu hook on ``restore
   begin`` and the hook's output replaces the restored XML, so the **new map must already be
   at the hook's path**: it is, the operator edited it in place (``--networks`` names it);
4. **finish**: a plain plan of the new map: the old switch's leftovers go (and the uplink
   moves here instead, with ``uplink_first=False``).

Uplink first or last (bench/transition.py): with save + restore the outage is the same (the
guest's pause dominates), but with the uplink moved first about half as many of the peer's
requests are lost; with the hybrid path the outage is the time from the uplink's move to the
guests' updates.

If a phase fails, what was done is undone in reverse: the finish is rolled back by the engine;
the old map is put back at the hook's path (the one asked for is kept beside it as
``<path>.rejected``) and the guests are moved back; the build is undone by a plan of the old map
(it removes what the build made). The record is written before each phase with what vifplug
owns then (crash-safe, as ``host apply``'s), and, on success, with the new map as the one
applied (:meth:`DeviceRecord.applied`: the next transition's old map).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vifplug.errors import VifplugError
from vifplug.files import replace_durably
from vifplug.guests import (
    GuestMove,
    GuestMoveError,
    move_guests,
    plan_moves,
    plug_hybrid_paths,
    read_guests,
)
from vifplug.host.errors import StepFailed
from vifplug.host.network import DeviceRecord, read_host_state
from vifplug.hostnet import HostMapError, HostPlan, HostState, Owned, plan_host
from vifplug.netlayout import one_switch_type_problem
from vifplug.netmap import NetworkMap
from vifplug.plan import Plan

if TYPE_CHECKING:
    from vifplug.host import Host

__all__ = ["Transition", "TransitionError", "empty_map", "guest_holders", "transition"]


class TransitionError(VifplugError):
    """A switch transition failed; the message names the phase, the step or guest, and what
    was rolled back (or, if something could not be, what is left)."""


@dataclass
class Transition:
    """What a transition did."""

    build: HostPlan
    moves: Sequence[GuestMove]
    finish: HostPlan | None
    #: Seconds spent in each phase: ``build``, ``guests``, ``finish``.
    timings: dict[str, float] = field(default_factory=dict)


def empty_map(like: NetworkMap) -> NetworkMap:
    """A map without networks (no map recorded as applied): every network counts as moving."""
    return NetworkMap(like.path, {}, like.allow_mixed, "")


def guest_holders(state: HostState, owned: Owned) -> frozenset[str]:
    """vifplug's bridges that hold ports vifplug did not put there (guests' TAPs): the Linux
    bridges of its record and its OVS bridges (``external_ids:vifplug-owner``)."""
    held = set()
    for name, device in owned.devices.items():
        if device.kind == "bridge" and any(
                link.master == name and owned.ports.get(port) != name
                for port, link in state.links.items()):
            held.add(name)
    for name, row in (state.bridges or {}).items():
        if row.owned and any(port != name and not (state.ports.get(port) is not None
                                                   and state.ports[port].owned)
                             for port in row.ports):
            held.add(name)
    return frozenset(held)


def _apply(plan: HostPlan, host: Host) -> None:
    from vifplug.host.apply import apply_plug

    if plan.steps:
        apply_plug([Plan("host", "host networks", plan.steps)], host)


def transition(new_map: NetworkMap, host: Host, record: DeviceRecord, conn: Any, *,
               datapath_type: str | None = None,
               save_dir: str | os.PathLike[str] | None = None,
               say: Callable[[str], None] | None = None,
               uplink_first: bool = True, hybrid: bool = True) -> Transition | None:
    """Converge the host to ``new_map`` moving the running guests of ``conn`` (read-write)
    whose networks change switch; None when no guest has to move (then the caller applies the
    map as usual). :class:`TransitionError` when a phase fails (everything rolled back, or the
    message says what is not); :class:`~vifplug.hostnet.HostMapError` (exit 2, nothing changed)
    when the map cannot be applied, or no map is recorded as applied (the guests could not be
    moved back). ``uplink_first`` (default): the uplinks move to the new switch right after
    the build, before the guests (measured: the same outage, about half the pings lost —
    docs/src/benchmarks.md); False: after the guests, in the finish. ``hybrid`` (default):
    guests move from a Linux bridge to OVS live by the hybrid path; False: by save + restore
    onto the OVS virtualport (a pause of the guest)."""
    if (mixed := one_switch_type_problem(new_map)) is not None:
        raise HostMapError(str(mixed))
    note = say or (lambda _: None)
    path = Path(new_map.path)
    with record.locked():
        old_map = record.applied()
        moves = plan_moves(read_guests(conn), old_map or empty_map(new_map), new_map,
                           hybrid=hybrid)
        if not moves:
            return None
        old_map = _check_movable(old_map, moves, record, new_map, path)
        owned, state = record.read(), read_host_state(host)
        keep = guest_holders(state, owned)
        build = plan_host(new_map, state, owned, datapath_type=datapath_type, keep=keep)
        result = Transition(build, moves, None)
        mid = owned.union(build.owned_after)

        # 1. build the new switch beside the old one
        started = time.monotonic()
        record.write(mid)
        try:
            _apply(build, host)
        except StepFailed as exc:
            if exc.rolled_back:
                record.write(owned)
            raise TransitionError(f"switch transition to {path}: building the new switch "
                                  f"failed, nothing moved: {exc}") from exc
        result.timings["build"] = time.monotonic() - started
        note(f"built: {len(build.steps)} steps in {result.timings['build']:.3f} s")

        put_back = _MapPutBack(path, old_map, new_map)

        def undo_build() -> str:
            return _undo_build(old_map, host, record, mid, datapath_type)

        # the guests' hybrid paths, while they still run on the old switch
        undo_build = _plug_paths(moves, host, result, path, undo_build)

        if uplink_first:
            _move_uplinks(new_map, host, mid, keep=keep, datapath_type=datapath_type,
                          result=result, note=note, undo_build=undo_build)

        # 2. the guests (the new map is at the hook's path already)
        started = time.monotonic()
        try:
            move_guests(conn, old_map, new_map, save_dir=save_dir, moves=moves,
                        before_rollback=put_back, host=host, plugged=True)
        except GuestMoveError as exc:
            put_back()
            raise TransitionError(f"switch transition to {path}: moving the guests failed: "
                                  f"{exc}{undo_build()}{put_back.said()}") from exc
        result.timings["guests"] = time.monotonic() - started
        note(f"moved {len(moves)} guest(s) in {result.timings['guests']:.3f} s")

        # 3. the uplink to the new switch, the old switch's leftovers away
        started = time.monotonic()
        try:
            finish = plan_host(new_map, read_host_state(host), mid,
                               datapath_type=datapath_type)
            _apply(finish, host)
        except (StepFailed, HostMapError) as exc:
            put_back()
            back = _guests_back(conn, new_map, old_map, save_dir, host)
            raise TransitionError(f"switch transition to {path}: finishing (uplink, old "
                                  f"switch) failed: {exc}{back}{undo_build()}"
                                  f"{put_back.said()}") from exc
        result.finish = finish
        result.timings["finish"] = time.monotonic() - started
        record.write(finish.owned_after, applied=new_map)
        note(f"finished: {len(finish.steps)} steps in {result.timings['finish']:.3f} s")
        return result


def _plug_paths(moves: Sequence[GuestMove], host: Host, result: Transition, path: Path,
                undo_build: Callable[[], str]) -> Callable[[], str]:
    """Plug the guests' hybrid paths (before the uplink moves); what undoes them and the
    build."""
    started = time.monotonic()
    try:
        unplug_paths = plug_hybrid_paths(moves, host)
    except GuestMoveError as exc:
        raise TransitionError(f"switch transition to {path}: plugging the guests' hybrid "
                              f"paths failed, nothing moved: {exc}{undo_build()}") from exc
    result.timings["hybrid"] = time.monotonic() - started

    def undo() -> str:
        try:
            unplug_paths()
        except GuestMoveError as exc:
            return f"; NOT undone: {exc}{undo_build()}"
        return undo_build()
    return undo


def _move_uplinks(new_map: NetworkMap, host: Host, mid: Owned, *, keep: frozenset[str],
                  datapath_type: str | None, result: Transition, note: Callable[[str], None],
                  undo_build: Callable[[], str]) -> None:
    """``uplink_first``: the uplinks leave the kept bridges for the new switch's."""
    started = time.monotonic()
    try:
        early = plan_host(new_map, read_host_state(host), mid, datapath_type=datapath_type,
                          keep=keep, keep_uplinks=False)
        _apply(early, host)
    except (StepFailed, HostMapError) as exc:
        raise TransitionError(f"switch transition to {new_map.path}: moving the uplink failed, "
                              f"no guest moved: {exc}{undo_build()}") from exc
    result.timings["uplink"] = time.monotonic() - started
    note(f"uplink moved: {len(early.steps)} steps in {result.timings['uplink']:.3f} s")


def _guests_back(conn: Any, new_map: NetworkMap, old_map: NetworkMap,
                 save_dir: str | os.PathLike[str] | None, host: Host) -> str:
    try:
        move_guests(conn, new_map, old_map, save_dir=save_dir, host=host)
    except GuestMoveError as again:
        return f"; the guests NOT moved back: {again}"
    return "; the guests moved back"


def _undo_build(old_map: NetworkMap, host: Host, record: DeviceRecord, mid: Owned,
                datapath_type: str | None) -> str:
    """Undo the build: a plan of the old map removes what it made; what happened, in words."""
    try:
        back = plan_host(old_map, read_host_state(host), mid, datapath_type=datapath_type)
        _apply(back, host)
    except (StepFailed, HostMapError) as exc:
        return f"; NOT undone: the new switch's build ({exc})"
    record.write(back.owned_after)
    return "; the new switch's build undone"


def _check_movable(old_map: NetworkMap | None, moves: Sequence[GuestMove],
                   record: DeviceRecord, new_map: NetworkMap, path: Path) -> NetworkMap:
    """The old map, when the guests could be moved back with it; else HostMapError."""
    if old_map is None:
        raise HostMapError(
            f"{record.path}: no map is recorded as applied on this host, so the guests "
            f"({', '.join(m.domain for m in moves)}) could not be moved back if the "
            "transition failed: run `vifplug host apply` once with the map the host runs "
            "now, then again with the new one")
    try:
        on_disk = path.read_text()
    except OSError as exc:
        raise HostMapError(f"{path}: cannot read it back: {exc.strerror}") from None
    if on_disk != new_map.text:
        raise HostMapError(f"{path} changed while host apply read it: run it again")
    return old_map


class _MapPutBack:
    """Put the old map back at the hook's path (once); the map asked for goes beside it."""

    def __init__(self, path: Path, old_map: NetworkMap, new_map: NetworkMap) -> None:
        self.path, self.old, self.new = path, old_map, new_map
        self.done = False

    def __call__(self) -> None:
        if self.done:
            return
        self.done = True
        replace_durably(self.path.with_name(self.path.name + ".rejected"), self.new.text)
        replace_durably(self.path, self.old.text)

    def said(self) -> str:
        if not self.done:
            return ""
        return (f"; {self.path} holds the map applied before again (the qemu hook reads it), "
                f"the one asked for is kept in {self.path}.rejected")
