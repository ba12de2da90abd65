"""The host's network map: how this host switches each logical network (``networks.toml``).

    [networks.red]            # a legacy Linux bridge (bridge defaults to the network name)

    [networks.blue]           # an OVS bridge, with an optional access VLAN or trunk
    bridge = "br-int"
    vlan = 100

    [networks.blue-ovn]       # an OVN logical switch, reached through the integration bridge
    switch = "ovn"
    logical_switch = "blue"   # defaults to the network name; bridge defaults to br-int

    [networks.green]          # macvtap on a NIC, optionally with shared 802.1Qbg/Qbh parameters
    interface = "eth2"
    mode = "vepa"
    [networks.green.qbg]
    manager_id = 11
    type_id = 1193047
    type_id_version = 2

Validation is strict (unknown keys, bad names, ranges) and every error names the file and line.
A broken file is an error, never an empty map. Light on purpose: the migration hook loads this on
every incoming migration, so it uses tomllib and names.py only.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from typing import Any, NamedTuple

from vifplug import spec
from vifplug.errors import VifError
from vifplug.names import check_device_name, check_network_name, check_profile_id

__all__ = [
    "DEFAULT_PATH",
    "DirectNetwork",
    "LegacyNetwork",
    "MappedNetwork",
    "NetworkMap",
    "NetworkMapError",
    "OvnNetwork",
    "OvsNetwork",
    "QbgShared",
    "load_network_map",
    "map_path",
]

#: Where the map lives; ``VIFPLUG_NETWORKS`` (or ``--networks``) overrides it. (Paths here are
#: plain strings and the values NamedTuples: the hook imports this on every incoming migration,
#: and pathlib and dataclasses would each cost it more than the rewrite itself.)
DEFAULT_PATH = "/etc/vifplug/networks.toml"
DIRECT_MODES = ("vepa", "bridge", "private", "passthrough")
#: The integration bridge an OVN network uses unless its table says otherwise.
DEFAULT_OVN_BRIDGE = "br-int"
#: A logical switch name: what ``ovn-nbctl ls-add`` accepts without quoting troubles (OVN
#: itself takes any string; the map keeps to names a shell, a log line and a path can carry).
_LOGICAL_SWITCH = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:\-]{0,252}$")


class NetworkMapError(VifError):
    """networks.toml is missing, not TOML, or breaks a rule (the message has file and line)."""


class LegacyNetwork(NamedTuple):
    """A Linux bridge."""

    name: str
    bridge: str

    @property
    def switch(self) -> str:
        return "legacy"

    def describe(self) -> str:
        return f"Linux bridge {self.bridge}"


class OvsNetwork(NamedTuple):
    """An OVS bridge, with the access VLAN or the trunk this host gives the network."""

    name: str
    bridge: str
    vlan: int | None = None
    trunk: tuple[int, ...] | None = None

    @property
    def switch(self) -> str:
        return "ovs"

    def describe(self) -> str:
        tags = (f", vlan {self.vlan}" if self.vlan is not None else
                f", trunk {','.join(map(str, self.trunk))}" if self.trunk else "")
        return f"OVS bridge {self.bridge}{tags}"


class OvnNetwork(NamedTuple):
    """An OVN logical switch, reached through this host's integration bridge. A guest's port on
    it is an OVS port whose ``external_ids:iface-id`` (the libvirt ``interfaceid``) is the name
    of its logical switch port; ovn-controller binds it, so no VLAN is ever set locally."""

    name: str
    logical_switch: str
    bridge: str = DEFAULT_OVN_BRIDGE

    @property
    def switch(self) -> str:
        return "ovn"

    def describe(self) -> str:
        return f"OVN logical switch {self.logical_switch} on {self.bridge}"


class QbgShared(NamedTuple):
    """802.1Qbg parameters shared by every guest on the network (instanceid is per guest)."""

    manager_id: int
    type_id: int
    type_id_version: int


class DirectNetwork(NamedTuple):
    """macvtap on a NIC, in ``mode``, with the host's 802.1Qbg or 802.1Qbh parameters if any."""

    name: str
    interface: str
    mode: str = "vepa"
    qbg: QbgShared | None = None
    qbh_profile_id: str | None = None

    @property
    def switch(self) -> str:
        return "direct"

    def describe(self) -> str:
        profile = (" with 802.1Qbg" if self.qbg is not None else
                   f" with 802.1Qbh profile {self.qbh_profile_id}" if self.qbh_profile_id else "")
        return f"macvtap on {self.interface} ({self.mode}){profile}"


MappedNetwork = LegacyNetwork | OvsNetwork | OvnNetwork | DirectNetwork


class NetworkMap(NamedTuple):
    """This host's networks by name, and the file they came from."""

    path: str
    networks: Mapping[str, MappedNetwork]

    def get(self, name: str) -> MappedNetwork | None:
        return self.networks.get(name)


def map_path(path: str | os.PathLike[str] | None = None) -> str:
    """``path``, else ``$VIFPLUG_NETWORKS``, else /etc/vifplug/networks.toml."""
    if path is not None:
        return os.fspath(path)
    return os.environ.get("VIFPLUG_NETWORKS") or DEFAULT_PATH


def load_network_map(path: str | os.PathLike[str] | None = None) -> NetworkMap:
    """Read and validate the network map (see :func:`map_path` for which file)."""
    where = map_path(path)
    try:
        with open(where, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise NetworkMapError(f"{where}: cannot read the network map: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError as exc:
        raise NetworkMapError(f"{where}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        # tomllib says "... (at line 3, column 10)": put the line where every other error has it
        found = re.search(r"^(.*) \(at line (\d+), column \d+\)$", str(exc))
        if found:
            raise NetworkMapError(f"{where}:{found.group(2)}: not valid TOML: "
                                  f"{found.group(1)}") from None
        raise NetworkMapError(f"{where}: not valid TOML: {exc}") from None
    return NetworkMap(where, _networks(data, _Locator(where, text)))


class _Locator:
    """Finds the line of a table or key in the file, for error messages."""

    _HEADER = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]\s*(?:#.*)?$")
    _KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'.]+)\s*=")

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def error(self, where: tuple[str, ...], message: str) -> NetworkMapError:
        line = self.line(where)
        at = f"{self.path}:{line}" if line else str(self.path)
        return NetworkMapError(f"{at}: {'.'.join(where)}: {message}")

    def line(self, where: tuple[str, ...]) -> int | None:
        table: tuple[str, ...] = ()
        best: int | None = None  # else: the header of the deepest table holding it
        depth = 1
        for number, text in enumerate(self.lines, 1):
            header = self._HEADER.match(text)
            if header:
                table = _dotted(header.group(1))
                if table == where:
                    return number
                if table == where[:len(table)] and len(table) > depth:
                    best, depth = number, len(table)
                continue
            key = self._KEY.match(text)
            if key and (*table, *_dotted(key.group(1))) == where:
                return number
        return best


def _dotted(text: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in text.split("."))


_KEYS: dict[str, frozenset[str]] = {
    "legacy": frozenset({"switch", "bridge"}),
    "ovs": frozenset({"switch", "bridge", "vlan", "trunk"}),
    "ovn": frozenset({"switch", "bridge", "logical_switch"}),
    "direct": frozenset({"switch", "interface", "mode", "qbg", "qbh"}),
}


def _networks(data: dict[str, Any], at: _Locator) -> dict[str, MappedNetwork]:
    for key in data:
        if key != "networks":
            raise at.error((key,), "unknown key (the map holds only [networks.NAME] tables)")
    tables = data.get("networks", {})
    if not isinstance(tables, dict):
        raise at.error(("networks",), "must be a table of networks")
    networks: dict[str, MappedNetwork] = {}
    for name, table in tables.items():
        where = ("networks", name)
        try:
            check_network_name(name)
        except ValueError as exc:
            raise at.error(where, f"network name {exc}") from None
        if not isinstance(table, dict):
            raise at.error(where, "must be a table ([networks.NAME])")
        switch = table.get("switch")
        if switch not in _KEYS:
            raise at.error((*where, "switch"), "must be one of 'legacy', 'ovs', 'ovn', 'direct' "
                           f"(got {switch!r})")
        for key in table:
            if key not in _KEYS[switch]:
                raise at.error((*where, key), f"unknown key for switch {switch!r} (known: "
                               f"{', '.join(sorted(_KEYS[switch]))})")
        networks[name] = _BUILDERS[switch](name, table, where, at)
    return networks


def _device(table: dict[str, Any], key: str, where: tuple[str, ...], at: _Locator,
            default: str | None = None) -> str:
    value = table.get(key, default)
    if value is None:
        raise at.error((*where, key), "required")
    if not isinstance(value, str):
        raise at.error((*where, key), f"must be a string (got {value!r})")
    try:
        return check_device_name(value)
    except ValueError as exc:
        raise at.error((*where, key), f"{exc} (got {value!r})") from None


def _int(value: object, lo: int, hi: int, where: tuple[str, ...], at: _Locator) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise at.error(where, f"must be an integer (got {value!r})")
    if not lo <= value <= hi:
        raise at.error(where, f"must be between {lo} and {hi} (got {value})")
    return value


def _legacy(name: str, table: dict[str, Any], where: tuple[str, ...],
            at: _Locator) -> MappedNetwork:
    return LegacyNetwork(name, _device(table, "bridge", where, at, default=name))


def _ovs(name: str, table: dict[str, Any], where: tuple[str, ...],
         at: _Locator) -> MappedNetwork:
    bridge = _device(table, "bridge", where, at)
    vlan = trunk = None
    if "vlan" in table:
        vlan = _int(table["vlan"], spec.VLAN_MIN, spec.VLAN_MAX, (*where, "vlan"), at)
    if "trunk" in table:
        if vlan is not None:
            raise at.error((*where, "trunk"), "cannot be combined with 'vlan' (give one)")
        items = table["trunk"]
        if not isinstance(items, list) or not items:
            raise at.error((*where, "trunk"), f"must be a non-empty list of VLANs (got {items!r})")
        trunk = tuple(_int(item, spec.VLAN_MIN, spec.VLAN_MAX, (*where, "trunk"), at)
                      for item in items)
        if len(set(trunk)) != len(trunk):
            raise at.error((*where, "trunk"), "must not repeat a VLAN")
    return OvsNetwork(name, bridge, vlan, trunk)


def _ovn(name: str, table: dict[str, Any], where: tuple[str, ...],
         at: _Locator) -> MappedNetwork:
    bridge = _device(table, "bridge", where, at, default=DEFAULT_OVN_BRIDGE)
    value = table.get("logical_switch", name)
    if not isinstance(value, str):
        raise at.error((*where, "logical_switch"), f"must be a string (got {value!r})")
    if not _LOGICAL_SWITCH.match(value):
        raise at.error((*where, "logical_switch"), "must be 1-253 characters of letters, "
                       f"digits, '_', '.', ':', '-', not starting with a punctuation mark "
                       f"(got {value!r})")
    return OvnNetwork(name, value, bridge)


def _direct(name: str, table: dict[str, Any], where: tuple[str, ...],
            at: _Locator) -> MappedNetwork:
    interface = _device(table, "interface", where, at)
    mode = table.get("mode", "vepa")
    if mode not in DIRECT_MODES:
        raise at.error((*where, "mode"), f"must be one of {', '.join(DIRECT_MODES)} "
                       f"(got {mode!r})")
    if "qbg" in table and "qbh" in table:
        raise at.error((*where, "qbh"), "a network gives at most one of 'qbg' and 'qbh'")
    qbg = profile = None
    if "qbg" in table:
        qbg = _qbg(table["qbg"], (*where, "qbg"), at)
    if "qbh" in table:
        spec = table["qbh"]
        if not isinstance(spec, dict) or set(spec) != {"profile_id"}:
            raise at.error((*where, "qbh"), "must be a table with exactly 'profile_id'")
        value = spec["profile_id"]
        try:
            profile = check_profile_id(value) if isinstance(value, str) else None
        except ValueError as exc:
            raise at.error((*where, "qbh", "profile_id"), f"{exc} (got {value!r})") from None
        if profile is None:
            raise at.error((*where, "qbh", "profile_id"), f"must be a string (got {value!r})")
    return DirectNetwork(name, interface, mode, qbg, profile)


_QBG_RANGES = {"manager_id": spec.UINT8_MAX, "type_id": spec.UINT24_MAX,
               "type_id_version": spec.UINT8_MAX}


def _qbg(spec: object, where: tuple[str, ...], at: _Locator) -> QbgShared:
    if not isinstance(spec, dict):
        raise at.error(where, "must be a table")
    for key in spec:
        if key not in _QBG_RANGES:
            raise at.error((*where, key), "unknown key (known: manager_id, type_id, "
                           "type_id_version; instance_id stays per guest)")
    values = {}
    for key, hi in _QBG_RANGES.items():
        if key not in spec:
            raise at.error((*where, key), "required")
        values[key] = _int(spec[key], 0, hi, (*where, key), at)
    return QbgShared(**values)


_BUILDERS = {"legacy": _legacy, "ovs": _ovs, "ovn": _ovn, "direct": _direct}
