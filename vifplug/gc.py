"""``vifplug gc``: an audit's orphans removed and its mismatches repaired, as one plan.

:func:`plan_gc` is pure: from an :class:`~vifplug.audit.AuditResult`, the time each finding was
first seen, and the lock files, it makes a :class:`GcPlan` — plan steps of
:mod:`vifplug.plan` (``DeleteOvsPort`` and ``EnsureOvsPort`` in one OVSDB transaction,
``DeleteLink`` in one netlink request) with the OVSDB steps that undo them, and what it leaves
alone and why. :func:`vifplug.host.apply.apply_gc` applies it, all or nothing.

What gc never touches: a ``foreign`` object; a name that is not a device name vifplug would
make (``[A-Za-z0-9_.-]``, at most 15 bytes); an orphan whose ``vm-uuid``/``vm-id`` names an
existing domain (nor, by the audit's rules, anything a domain claims); anything whose VIF's lock
a plug or unplug holds now; anything younger than ``older_than``.

The age of a finding (docs/src/audit.md, "Ages"): the time since gc first saw it — gc records,
per scope, when it first saw each finding, keyed by what would change if the object were made
anew (a device's ifindex, an OVS Interface row's UUID, a mismatch's differences) — or since the
last change of a lock file of its VIF (vifplug's plug and unplug take it), whichever is shorter.
A plug in flight is then never an orphan: its devices are new (no record), and its lock is held
or fresh.

NIC pool findings (:mod:`vifplug.audit`) change the pool state file, never a device: a stale
holding is released, an unrecorded one recorded (``pool_release`` / ``pool_record``), after the
device plan, each checked again under the state file's lock (:func:`vifplug.pools.amend`). Their
age is the time since gc first saw them too: a hook's allocation for a guest whose incoming
migration has not yet made its domain is seconds old.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vifplug.audit import POOL_SUBJECT, AuditResult, Finding, LockFile, PoolHolding, id_part
from vifplug.names import check_device_name
from vifplug.plan import DeleteLink, DeleteOvsPort, EnsureOvsPort, Step

__all__ = ["DEFAULT_OLDER_THAN", "GcPlan", "Skipped", "finding_keys", "narrow", "plan_gc",
           "seen_now"]

#: Seconds a finding must have been seen before gc acts on it, by default.
DEFAULT_OLDER_THAN = 60.0


@dataclass(frozen=True, slots=True)
class Skipped:
    kind: str
    subject: str
    reason: str


@dataclass(frozen=True, slots=True)
class GcPlan:
    """What gc does, in order: ``steps`` (OVSDB steps, then device deletions); ``undo``: the
    OVSDB steps that put back what ``steps`` change in OVSDB (a rollback after a failed
    deletion); ``skipped``: what gc leaves alone, and why; ``lock_ids``: the VIF ids whose lock
    files gc holds while it applies; ``removed_ids``: those of them whose host side it removes
    (their lock files go too, as after an unplug)."""

    steps: tuple[Step, ...] = ()
    undo: tuple[Step, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    lock_ids: tuple[str, ...] = ()
    removed_ids: tuple[str, ...] = ()
    #: Stale NIC pool holdings to release, and unrecorded ones to record, in the state file.
    pool_release: tuple[PoolHolding, ...] = ()
    pool_record: tuple[PoolHolding, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.steps or self.pool_release or self.pool_record)

    def __str__(self) -> str:
        lines = ["gc plan:"]
        lines += [f"  {n}. {step.describe()}" for n, step in enumerate(self.steps, 1)]
        first = len(self.steps) + 1
        lines += [f"  {n}. release pool NIC {h.nic} of network {h.network} held by {h.domain} "
                  f"({h.mac})" for n, h in enumerate(self.pool_release, first)]
        first += len(self.pool_release)
        lines += [f"  {n}. record pool NIC {h.nic} of network {h.network} as held by "
                  f"{h.domain} ({h.mac})" for n, h in enumerate(self.pool_record, first)]
        if self.empty:
            lines.append("  nothing to do")
        lines += [f"  skip {s.kind} {s.subject}: {s.reason}" for s in self.skipped]
        return "\n".join(lines)


def finding_keys(finding: Finding) -> tuple[str, ...]:
    """The keys gc records a finding's first sighting under: they change when the object is
    made anew (ifindex, OVS row UUID) or the mismatch changes."""
    evidence = finding.evidence
    keys = []
    if finding.subject.startswith(POOL_SUBJECT):
        keys.append(f"pool:{finding.kind}:{finding.subject}:{evidence['pool']['domain']}")
    elif finding.kind == "mismatch":
        diffs = ";".join(f"{d['field']}={d['actual']}" for d in evidence["differences"])
        keys.append(f"mismatch:{finding.subject}:{evidence['ovs']['uuid']}:{diffs}")
    elif finding.kind == "orphan":
        if "device" in evidence:
            keys.append(f"link:{finding.subject}:{evidence['device']['index']}")
        if "ovs" in evidence:
            keys.append(f"ovs:{finding.subject}:{evidence['ovs']['uuid']}")
    return tuple(keys)


def seen_now(result: AuditResult, seen: Mapping[str, float], now: float) -> dict[str, float]:
    """The first-sighting record after this audit: each current orphan's and mismatch's keys,
    with the time recorded before, else ``now`` (findings that are gone are forgotten)."""
    return {key: seen.get(key, now) for finding in result.findings
            for key in finding_keys(finding)}


def _locks_of(subject: str, locks: Sequence[LockFile]) -> list[LockFile]:
    part = id_part(subject)
    if part is None or len(part) < 8:
        return []
    return [lock for lock in locks if lock.vif_id.startswith(part)]


def plan_gc(result: AuditResult, *, seen: Mapping[str, float], now: float,
            older_than: float = DEFAULT_OLDER_THAN) -> GcPlan:
    """The plan for ``result``'s orphans and mismatches (pure). ``seen``: when each finding key
    was first seen (:func:`seen_now`)."""
    ovsdb: list[Step] = []
    links: list[Step] = []
    undo: list[Step] = []
    skipped: list[Skipped] = []
    lock_ids: set[str] = set()
    removed_ids: set[str] = set()
    pool_release: list[PoolHolding] = []
    pool_record: list[PoolHolding] = []
    locks = result.inventory.locks
    for finding in result.findings:
        kind, subject = finding.kind, finding.subject
        if subject.startswith(POOL_SUBJECT):
            age = now - min(seen.get(key, now) for key in finding_keys(finding))
            if age < older_than:
                skipped.append(_young(finding, age, older_than))
            else:
                (pool_release if kind == "orphan" else pool_record).append(
                    PoolHolding(**finding.evidence["pool"]))
            continue
        if kind == "foreign":
            skipped.append(Skipped(kind, subject, "foreign: never touched"))
            continue
        if kind == "missing":
            skipped.append(Skipped(kind, subject, "missing: plug the VIF again (gc does not "
                                                  "re-create devices)"))
            continue
        if kind == "orphan" and finding.domain is not None:
            skipped.append(Skipped(kind, subject, f"its domain {finding.domain.name} exists"))
            continue
        related = _locks_of(subject, locks)
        if any(lock.held for lock in related):
            skipped.append(Skipped(kind, subject, "a plug or unplug holds its VIF's lock now"))
            continue
        keys = finding_keys(finding)
        since = max([seen.get(key, now) for key in keys] + [lock.mtime for lock in related])
        if now - since < older_than:
            skipped.append(_young(finding, now - since, older_than))
            continue
        try:
            check_device_name(subject)
        except ValueError as exc:
            skipped.append(Skipped(kind, subject, f"not a name vifplug handles: {exc}"))
            continue
        if kind == "orphan":
            _remove(finding, ovsdb, links, undo)
            removed_ids.update(lock.vif_id for lock in related)
        else:
            reason = _repair(finding, ovsdb, undo)
            if reason is not None:
                skipped.append(Skipped(kind, subject, reason))
                continue
        lock_ids.update(lock.vif_id for lock in related)
    return GcPlan(tuple(ovsdb + links), tuple(undo), tuple(skipped), tuple(sorted(lock_ids)),
                  tuple(sorted(removed_ids)), tuple(pool_release), tuple(pool_record))


def _young(finding: Finding, age: float, older_than: float) -> Skipped:
    return Skipped(finding.kind, finding.subject,
                   f"seen {age:.0f} s ago, younger than --older-than {older_than:g} s")


def _remove(finding: Finding, ovsdb: list[Step], links: list[Step], undo: list[Step]) -> None:
    evidence = finding.evidence
    row = evidence.get("ovs")
    if row is not None:
        ovsdb.append(DeleteOvsPort(finding.subject))
        if row["bridge"] is not None:
            undo.append(_ensure(row, row))
    if "device" in evidence:
        links.append(DeleteLink(finding.subject))


def _repair(finding: Finding, ovsdb: list[Step], undo: list[Step]) -> str | None:
    evidence = finding.evidence
    row: dict[str, Any] = evidence["ovs"]
    expected: dict[str, Any] = evidence["network"]
    fields = {d["field"] for d in evidence["differences"]}
    if "bridge" in fields:
        return (f"on OVS bridge {row['bridge']}, its network's is {expected['bridge']}: unplug "
                "and plug it again (gc does not move ports)")
    wanted = dict(row)
    wanted["tag"] = expected["tag"]
    wanted["trunks"] = expected["trunks"]
    if "mtu_request" in expected:
        wanted["mtu_request"] = expected["mtu_request"]
    ids = {}
    if "iface-id" in fields:
        ids["iface-id"] = expected["iface-id"]
    ovsdb.append(_ensure(wanted, {"external_ids": ids}))
    old_ids = {key: row["external_ids"][key] for key in ids if key in row["external_ids"]}
    undo.append(_ensure(row, {"external_ids": old_ids}))
    return None


def _ensure(columns: Mapping[str, Any], ids: Mapping[str, Any]) -> EnsureOvsPort:
    return EnsureOvsPort(columns["bridge"], columns["name"],
                         external_ids=tuple(sorted(ids["external_ids"].items())),
                         mtu_request=columns["mtu_request"], tag=columns["tag"],
                         trunks=tuple(columns["trunks"]), interface_type=columns["type"])


def narrow(plan: GcPlan, result: AuditResult) -> GcPlan:
    """``plan`` without the removals of what is no longer an orphan in ``result`` (a fresh
    audit: a domain defined while gc planned claims it now), nor the pool changes whose finding
    is gone (a guest started on its NIC meanwhile). Pure."""
    still = {f.subject for f in result.findings if f.kind == "orphan" and f.domain is None}
    drifted = {f.subject for f in result.findings if f.kind == "mismatch"}
    release = tuple(h for h in plan.pool_release if h.subject in still)
    record = tuple(h for h in plan.pool_record if h.subject in drifted)
    late = [Skipped("orphan", h.subject, "its guest runs on it now (started while gc planned)")
            for h in plan.pool_release if h.subject not in still]
    late += [Skipped("mismatch", h.subject, "recorded now (while gc planned)")
             for h in plan.pool_record if h.subject not in drifted]
    planned = {step.device for step in plan.steps if not isinstance(step, EnsureOvsPort)}
    gone = planned - still
    if not gone and not late:
        return plan
    parts = [part for name in gone if (part := id_part(name)) is not None and len(part) >= 8]
    dropped = {vif_id for vif_id in plan.removed_ids if any(vif_id.startswith(p) for p in parts)}
    return GcPlan(
        tuple(s for s in plan.steps if isinstance(s, EnsureOvsPort) or s.device not in gone),
        tuple(s for s in plan.undo if s.device not in gone),
        (*plan.skipped, *(Skipped("orphan", name, "a domain has it now (defined while gc "
                                                  "planned)") for name in sorted(gone)), *late),
        tuple(i for i in plan.lock_ids if i not in dropped),
        tuple(i for i in plan.removed_ids if i not in dropped),
        release, record)
