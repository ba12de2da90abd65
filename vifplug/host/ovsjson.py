"""OVSDB tables read in one ``ovs-vsctl`` call, and OVSDB's JSON values decoded.

``host apply`` (vifplug.host.network) and ``audit`` (vifplug.host.inventory) both read a few
whole tables at once, not rows by name: one ``ovs-vsctl --format=json --data=json list`` per
table, chained in one call. OVSDB's JSON then writes an optional value as ``["set", []]`` or the
value itself, a set as ``["set", [...]]`` or its one member, a UUID as ``["uuid", "..."]`` and a
map as ``["map", [[k, v], ...]]``; the decoders below read them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vifplug.host.errors import HostError

__all__ = ["is_set", "optional", "ovsdb_map", "read_tables", "uuids"]

Rows = list[dict[str, Any]]


def read_tables(url: str, columns: Mapping[str, Sequence[str]]) -> dict[str, Rows] | None:
    """Each table of ``columns`` (table -> its columns), every row as a dict, in one
    ``ovs-vsctl`` call; None when there is no OVSDB (a ``unix:`` socket that does not exist,
    or no ovs-vsctl). A HostError in one line when ovs-vsctl fails."""
    if url.startswith("unix:") and not Path(url[5:]).exists():
        return None
    binary = shutil.which("ovs-vsctl")
    if binary is None:
        return None
    argv = [binary, f"--db={url}", "--timeout=30", "--format=json", "--data=json"]
    for table, names in columns.items():
        argv += ["--", f"--columns={','.join(names)}", "list", table]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=40)
    if result.returncode != 0:
        from vifplug.host.ovsdb import database_said  # here: ovsdb imports ovn imports this

        raise HostError(f"cannot read OVSDB at {url}: {database_said(result.stderr)}")
    tables: dict[str, Rows] = {}
    for table, output in zip(columns, result.stdout.splitlines(), strict=True):
        data = json.loads(output)
        tables[table] = [dict(zip(data["headings"], row, strict=True)) for row in data["data"]]
    return tables


def is_set(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and value[0] == "set"


def optional(value: Any) -> Any:
    """An optional value: ``["set", []]`` (none) or the value itself."""
    if is_set(value):
        return value[1][0] if value[1] else None
    return value


def uuids(value: Any) -> list[str]:
    """A set of UUIDs (or one UUID) as a list of their strings."""
    if is_set(value):
        return [item[1] for item in value[1]]
    return [value[1]]


def ovsdb_map(value: Any) -> dict[str, str]:
    """A map (``["map", [[k, v], ...]]``) as a dict; anything else as an empty one."""
    if isinstance(value, list) and len(value) == 2 and value[0] == "map":
        return {str(key): str(item) for key, item in value[1]}
    return {}
