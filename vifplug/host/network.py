"""``host apply``'s edge: read the host, keep the record of what vifplug owns, apply the plan.

The record of the Linux devices vifplug made (:class:`DeviceRecord`) is a JSON file,
``/var/lib/vifplug/host-devices.json`` by default (``VIFPLUG_HOST_RECORD`` or ``--record``
overrides it), one entry per network namespace. It is written atomically (a temporary file in
the same directory, fsync, rename, fsync of the directory) under an exclusive lock held for the
whole apply, and crash-safely in this order:

1. before anything changes, the record says vifplug owns what it owned **and** what it is about
   to make (so a crash mid-apply never leaves a device vifplug made without a record of it);
2. after the apply, it says what vifplug owns now; after a failure that was rolled back, what
   it owned before.

A record of a device that does not exist (a crash between 1 and making it) is harmless: the
next apply makes it, or forgets it. (The kernel's own mark, IFLA_IFALIAS, was considered: the
kernel ignores it in the request that creates a device, so a second request would set it — a
crash between the two would leave an unmarked device that the next apply would then refuse as
not vifplug's. The record written *before* the change has no such window.)

OVS rows carry their own mark (``external_ids:vifplug-owner``), written in the same transaction
as the rows: they need no record.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vifplug.errors import VifError
from vifplug.files import replace_durably
from vifplug.host.errors import StepFailed
from vifplug.host.ovsjson import is_set, optional, ovsdb_map, read_tables, uuids
from vifplug.hostnet import (
    OWNER,
    OWNER_KEY,
    HostMapError,
    HostPlan,
    HostState,
    LinkState,
    OvsBridgeState,
    OvsPortState,
    Owned,
    plan_host,
)
from vifplug.netlayout import one_switch_type_problem
from vifplug.plan import Plan

if TYPE_CHECKING:
    from vifplug.host import Host
    from vifplug.host.apply import Outcome
    from vifplug.netmap import NetworkMap

__all__ = ["RECORD_PATH", "DeviceRecord", "apply_host", "plan_for_host", "read_host_state",
           "read_ovs", "record_path"]

RECORD_PATH = "/var/lib/vifplug/host-devices.json"
RECORD_FORMAT = 1


def record_path(path: str | os.PathLike[str] | None = None) -> Path:
    """``path``, else ``$VIFPLUG_HOST_RECORD``, else /var/lib/vifplug/host-devices.json."""
    if path is not None:
        return Path(path)
    return Path(os.environ.get("VIFPLUG_HOST_RECORD") or RECORD_PATH)


class DeviceRecord:
    """The record of the Linux devices ``host apply`` made in one scope (a netns, or the host).
    Read and write it inside :meth:`locked`."""

    def __init__(self, path: Path, scope: str) -> None:
        self.path = path
        self.scope = scope
        self._locked = False

    @contextlib.contextmanager
    def locked(self) -> Iterator[DeviceRecord]:
        """Hold the record's lock (``<record>.lock``; one ``host apply`` at a time)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._locked = True
            yield self
        finally:
            self._locked = False
            os.close(fd)

    def _all(self) -> dict[str, Any]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return {"format": RECORD_FORMAT, "scopes": {}}
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or not isinstance(data.get("scopes"), dict):
                raise ValueError("not a vifplug device record")
        except ValueError as exc:
            raise VifError(f"{self.path}: cannot read vifplug's device record ({exc}); move it "
                           "away, and remove by hand the devices it named") from None
        return data

    def read(self) -> Owned:
        scope = self._all()["scopes"].get(self.scope, {})
        try:
            return Owned.from_json(scope)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise VifError(f"{self.path}: scopes.{self.scope}: not vifplug's device record "
                           f"({exc}); move it away, and remove by hand the devices it "
                           "named") from None

    def applied(self) -> NetworkMap | None:
        """The map the last successful ``host apply`` in this scope converged the host to (its
        text as it was then), or None when none is recorded (an apply older than this record
        entry, or none yet)."""
        from vifplug.netmap import NetworkMapError, parse_network_map

        entry = self._all().get("applied", {}).get(self.scope)
        if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
            return None
        where = f"{self.path} (applied.{self.scope}: the map last applied, from " \
                f"{entry.get('path', '?')})"
        try:
            return parse_network_map(entry["text"], where)
        except NetworkMapError as exc:
            raise VifError(f"{exc}; move {self.path} away to forget it") from None

    def write(self, owned: Owned, *, applied: NetworkMap | None = None) -> None:
        """Replace this scope's entry, atomically (temp file, fsync, rename, fsync the dir);
        ``applied``: also record this map as the one the host now runs (its path and text)."""
        if not self._locked:
            raise RuntimeError("DeviceRecord.write outside locked()")
        data = self._all()
        data["format"] = RECORD_FORMAT
        scopes: dict[str, Any] = data["scopes"]
        entry = owned.to_json()
        if entry["devices"] or entry["ports"]:
            scopes[self.scope] = entry
        else:
            scopes.pop(self.scope, None)
        if applied is not None:
            data.setdefault("applied", {})[self.scope] = {"path": applied.path,
                                                          "text": applied.text}
        replace_durably(self.path, json.dumps(data, indent=2, sort_keys=True) + "\n")


# --- reading the host -------------------------------------------------------------------------


def read_host_state(host: Host, *, ovs: bool = True) -> HostState:
    """Every net device (one netlink dump) and, with ``ovs`` and an OVSDB at the host's URL,
    every OVS bridge and port."""
    links = host.netlink.links()
    names = {link.index: link.name for link in links}
    found = {link.name: LinkState(link.name, link.kind, link.mtu, link.up,
                                  names.get(link.master) if link.master else None,
                                  names.get(link.link) if link.kind == "vlan" and link.link
                                  else None)
             for link in links}
    if not ovs:
        return HostState(found)
    rows = read_ovs(host.ovsdb_url)
    if rows is None:
        return HostState(found)
    bridges, ports, mtus = rows
    return HostState(found, bridges, ports, mtus)


_LISTS = {
    "Bridge": ("_uuid", "name", "ports", "datapath_type", "external_ids"),
    "Port": ("_uuid", "name", "interfaces", "tag", "trunks", "vlan_mode", "bond_mode", "lacp",
             "external_ids"),
    "Interface": ("_uuid", "name", "mtu_request"),
}


def read_ovs(url: str) -> tuple[dict[str, OvsBridgeState], dict[str, OvsPortState],
                                 dict[str, int | None]] | None:
    """The OVS bridges, ports and interface MTU requests at ``url`` (one ``ovs-vsctl``), or
    None when there is no OVSDB: a ``unix:`` socket that does not exist, or no ovs-vsctl."""
    tables = read_tables(url, _LISTS)
    if tables is None:
        return None
    by_uuid = {row["_uuid"][1]: row["name"] for rows in tables.values() for row in rows}
    ports: dict[str, OvsPortState] = {}
    bridges: dict[str, OvsBridgeState] = {}
    mtus = {row["name"]: optional(row["mtu_request"]) for row in tables["Interface"]}
    holder: dict[str, str] = {}
    for row in tables["Bridge"]:
        names = tuple(sorted(by_uuid.get(u, u) for u in uuids(row["ports"])))
        holder.update(dict.fromkeys(names, row["name"]))
        owned = ovsdb_map(row["external_ids"]).get(OWNER_KEY) == OWNER
        bridges[row["name"]] = OvsBridgeState(row["name"], owned, row["datapath_type"], names,
                                              mtus.get(row["name"]))
    for row in tables["Port"]:
        trunks = row["trunks"]
        ports[row["name"]] = OvsPortState(
            row["name"], holder.get(row["name"]),
            ovsdb_map(row["external_ids"]).get(OWNER_KEY) == OWNER,
            tuple(sorted(by_uuid.get(u, u) for u in uuids(row["interfaces"]))),
            optional(row["tag"]),
            tuple(sorted(trunks[1] if is_set(trunks) else [trunks])),
            optional(row["vlan_mode"]), optional(row["bond_mode"]), optional(row["lacp"]))
    return bridges, ports, mtus






# --- applying ---------------------------------------------------------------------------------


def plan_for_host(host_map: NetworkMap, host: Host, record: DeviceRecord, *,
                  datapath_type: str | None = None) -> HostPlan:
    """Read the host and the record and plan; changes nothing (and takes no lock: the record
    is replaced atomically, so a reader sees it whole). A map mixing switch types is refused
    before the host is read."""
    _refuse_mixed(host_map)
    return plan_host(host_map, read_host_state(host), record.read(),
                     datapath_type=datapath_type)


def _refuse_mixed(host_map: NetworkMap) -> None:
    mixed = one_switch_type_problem(host_map)
    if mixed is not None:
        raise HostMapError(str(mixed))


def apply_host(host_map: NetworkMap, host: Host, record: DeviceRecord, *,
               datapath_type: str | None = None) -> tuple[HostPlan, Outcome | None]:
    """Converge the host to the map: plan, record the intent, apply (every change undone if a
    step fails: :class:`~vifplug.host.StepFailed` naming the step and device), record the
    result. ``Outcome`` is None when there was nothing to do. The host's OVSDB steps go through
    ``ovs-vsctl`` (one invocation: one transaction)."""
    from vifplug.host.apply import apply_plug

    if host.ovsdb_backend != "vsctl":
        raise ValueError("host apply writes OVSDB with the vsctl backend")
    _refuse_mixed(host_map)
    with record.locked():
        plan = plan_host(host_map, read_host_state(host), record.read(),
                         datapath_type=datapath_type)
        if not plan.steps:
            if plan.owned_after != plan.owned_before or _applied_text(record) != host_map.text:
                # forget devices that are gone; remember the map the host runs
                record.write(plan.owned_after, applied=host_map)
            return plan, None
        record.write(plan.owned_before.union(plan.owned_after))
        try:
            outcome = apply_plug([Plan("host", "host networks", plan.steps)], host)
        except StepFailed as exc:
            if exc.rolled_back:
                record.write(plan.owned_before)
            raise
        record.write(plan.owned_after, applied=host_map)
        return plan, outcome


def _applied_text(record: DeviceRecord) -> str | None:
    entry = record._all().get("applied", {}).get(record.scope)
    return entry.get("text") if isinstance(entry, dict) else None
