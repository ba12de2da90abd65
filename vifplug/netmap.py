"""The host's network map: how this host switches each logical network (``networks.toml``).

    [networks.red]            # a legacy Linux bridge (bridge defaults to the network name)
    nic = "eth1"              # optional uplink: a NIC, or a bond
    vlan = 100                #   ... then an optional VLAN (a VLAN device on the uplink)
    mtu = 9000                #   ... and MTU

    [networks.blue]           # an OVS bridge, with an optional access VLAN or trunk
    bridge = "br-int"
    vlan = 100

    [networks.storage]        # OVS on an uplink: the bridge is the uplink's (br-bond0 unless named)
    switch = "ovs"
    bond = {name = "bond0", nics = ["eth2", "eth3"], mode = "balance-slb"}
    vlan = 200

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

    [networks.blue.portgroups.engineering]   # a portgroup: what its guests get instead
    vlan = 200                               # (see docs/src/host-networks.md, "Portgroups")
    bandwidth = {inbound = {average = 10000}}
    override = true                          # the host wins over a guest that asks otherwise

A network with portgroups names its default (``default_portgroup``): a guest that names no
portgroup gets it, a guest naming one the network lacks is refused.

Validation is strict (unknown keys, bad names, ranges, uplinks shared in conflicting ways: see
:mod:`vifplug.netlayout`) and every error names the file and line. A broken file is an error,
never an empty map; a map that mixes switch types loads (the hook must serve it), only
``host apply`` refuses it (:func:`vifplug.netlayout.one_switch_type_problem`).

Light on purpose: the migration hook loads this on every incoming migration, so it (and
netlayout.py) use tomllib and names.py only.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from typing import Any, NamedTuple

from vifplug import spec
from vifplug.errors import VifError
from vifplug.names import (
    check_device_name,
    check_network_name,
    check_profile_id,
    uplink_bridge_name,
    vlan_device_name,
)

__all__ = [
    "DEFAULT_PATH",
    "LEGACY_BOND_MODES",
    "OVS_BOND_MODES",
    "Bandwidth",
    "Bond",
    "DirectNetwork",
    "LegacyNetwork",
    "MapRuleError",
    "MappedNetwork",
    "NetworkMap",
    "NetworkMapError",
    "Nic",
    "OvnNetwork",
    "OvsNetwork",
    "Portgroup",
    "QbgShared",
    "Rate",
    "Uplink",
    "definition_key",
    "find_portgroup",
    "load_network_map",
    "map_path",
    "parse_bandwidth",
    "parse_network_map",
    "split_key",
    "table_of",
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
#: A Linux bond's modes (the kernel bonding driver's names) a ``legacy`` network accepts.
LEGACY_BOND_MODES = ("balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad",
                     "balance-tlb", "balance-alb")
#: An OVS bond's modes an ``ovs`` network accepts, each with the OVS ``bond_mode`` and ``lacp``
#: it sets. ``802.3ad`` (the kernel's LACP mode) is accepted as balance-tcp with LACP, so a map
#: using ``active-backup`` or ``802.3ad`` is valid on either switch; balance-tcp needs LACP.
OVS_BOND_MODES: Mapping[str, tuple[str, str]] = {
    "active-backup": ("active-backup", "off"),
    "balance-slb": ("balance-slb", "off"),
    "balance-tcp": ("balance-tcp", "active"),
    "802.3ad": ("balance-tcp", "active"),
}
DEFAULT_BOND_MODE = "active-backup"


class NetworkMapError(VifError):
    """networks.toml is missing, not TOML, or breaks a rule (the message has file and line)."""


class MapRuleError(NetworkMapError):
    """A rule across networks broken, found where the file is not at hand: ``where`` is the key
    (``("networks", "blue", "vlan")``); the loader turns it into ``file:line: key: reason``."""

    def __init__(self, where: tuple[str, ...], reason: str) -> None:
        super().__init__(f"{'.'.join(where)}: {reason}")
        self.where = where
        self.reason = reason


class Nic(NamedTuple):
    """A NIC as a network's uplink (``nic = "eth1"``)."""

    name: str

    @property
    def nics(self) -> tuple[str, ...]:
        return (self.name,)

    def describe(self) -> str:
        return f"NIC {self.name}"


class Bond(NamedTuple):
    """A bond of NICs as a network's uplink: a kernel bond on a ``legacy`` network, an OVS bond
    on an ``ovs`` one (``bond = {name = "bond0", nics = ["eth1", "eth2"], mode = "..."}``)."""

    name: str
    nics: tuple[str, ...]
    mode: str = DEFAULT_BOND_MODE

    @property
    def ovs_mode(self) -> tuple[str, str]:
        """The OVS ``bond_mode`` and ``lacp`` for :attr:`mode` (an ``ovs`` network's bond)."""
        return OVS_BOND_MODES[self.mode]

    def describe(self) -> str:
        return f"bond {self.name} ({self.mode}: {', '.join(self.nics)})"


#: What carries a network off the host; a network with none is host-internal.
Uplink = Nic | Bond


def _uplink_text(uplink: Uplink | None, tagged: str, mtu: int | None) -> str:
    text = f", uplink {uplink.describe()}{tagged}" if uplink is not None else ""
    return text + (f", MTU {mtu}" if mtu is not None else "")


class Rate(NamedTuple):
    """One direction of ``<bandwidth>``: average and peak in kB/s, burst in kB."""

    average: int
    peak: int | None = None
    burst: int | None = None

    def text(self) -> str:
        """``average/peak/burst``, an absent one empty (``1000//512``), trailing ones dropped."""
        parts = [str(self.average), "" if self.peak is None else str(self.peak),
                 "" if self.burst is None else str(self.burst)]
        while parts[-1] == "":
            parts.pop()
        return "/".join(parts)


class Bandwidth(NamedTuple):
    """``<bandwidth>`` (vif.json's ``bandwidth`` shape): the host's QoS on a guest's NIC."""

    inbound: Rate | None = None
    outbound: Rate | None = None

    def text(self) -> str:
        """The compact form the metadata records and ``explain`` shows:
        ``inbound=1000/2000/512 outbound=500``; :func:`parse_bandwidth` reads it back."""
        return " ".join(f"{name}={rate.text()}" for name, rate in
                        (("inbound", self.inbound), ("outbound", self.outbound))
                        if rate is not None)


def parse_bandwidth(text: str) -> Bandwidth | None:
    """:meth:`Bandwidth.text` read back; None when ``text`` is not that form."""
    rates: dict[str, Rate] = {}
    for item in text.split():
        name, _, value = item.partition("=")
        parts = value.split("/")
        if name not in ("inbound", "outbound") or name in rates or not 1 <= len(parts) <= 3 \
                or not all(part.isdigit() or (part == "" and n) for n, part in enumerate(parts)):
            return None
        numbers = [int(part) if part else None for part in parts] + [None] * (3 - len(parts))
        if any(n is not None and not spec.SPEED_MIN <= n <= spec.SPEED_MAX for n in numbers):
            return None
        average, peak, burst = numbers
        assert average is not None  # noqa: S101 - the first part is digits (checked above)
        rates[name] = Rate(average, peak, burst)
    if not rates:
        return None
    return Bandwidth(rates.get("inbound"), rates.get("outbound"))


class Portgroup(NamedTuple):
    """A portgroup of a network (``[networks.red.portgroups.engineering]``): what its guests get
    instead of (or beside) the network's own settings. Which keys each switch takes:
    :data:`_PORTGROUP_KEYS`; how they merge with a guest's own requests: :mod:`vifplug.merge`."""

    name: str
    #: The guests' access VLAN (ovs only).
    vlan: int | None = None
    #: The VLANs the guests' ports trunk (ovs only), instead of ``vlan``.
    trunk: tuple[int, ...] | None = None
    #: 802.1Qbg host-level parameters (direct only).
    qbg: QbgShared | None = None
    #: 802.1Qbh profile (direct only).
    profile_id: str | None = None
    bandwidth: Bandwidth | None = None
    #: ``<interface trustGuestRxFilters>`` (direct only).
    trust_guest_rx_filters: bool | None = None
    #: The portgroup's values win over a guest's different ones (else such a guest is refused).
    override: bool = False


class LegacyNetwork(NamedTuple):
    """A Linux bridge; with an uplink, the bridge's port is the uplink itself, or with ``vlan``
    a VLAN device on it (a Linux bridge is VLAN-unaware: one bridge per network)."""

    name: str
    bridge: str
    uplink: Uplink | None = None
    #: The 802.1Q tag of the network on its uplink (None: untagged); only with an uplink.
    vlan: int | None = None
    #: The MTU of the bridge and its port (the uplink gets the largest of its networks').
    mtu: int | None = None
    #: Portgroups, by name in the file's order, and the one a guest naming none gets.
    portgroups: tuple[Portgroup, ...] = ()
    default_portgroup: str | None = None
    #: ``<bandwidth>`` every guest of the network gets (a portgroup's wins).
    bandwidth: Bandwidth | None = None
    #: The network's values win over a guest's different ones (else such a guest is refused).
    override: bool = False
    #: Its index in the network's priority list (``[[networks.NAME.options]]``); None: the
    #: network's single definition.
    option: int | None = None

    @property
    def switch(self) -> str:
        return "legacy"

    @property
    def port(self) -> str | None:
        """The device the bridge holds: the uplink, or its VLAN device; None when internal."""
        if self.uplink is None:
            return None
        if self.vlan is None:
            return self.uplink.name
        return vlan_device_name(self.uplink.name, self.vlan)

    def describe(self) -> str:
        tagged = f" VLAN {self.vlan} ({self.port})" if self.vlan is not None else ""
        return (f"Linux bridge {self.bridge}{_uplink_text(self.uplink, tagged, self.mtu)}"
                f"{_host_text(self)}")


class OvsNetwork(NamedTuple):
    """An OVS bridge, with the access VLAN or the trunk this host gives the network. With an
    uplink, the bridge is the uplink's (one OVS bridge per uplink, its networks told apart by
    their tags: :func:`vifplug.netlayout.ovs_bridges`); the loader fills in ``bridge`` when the
    map names none (``bridge_given`` False) and ``native_vlan`` for an untagged network there."""

    name: str
    bridge: str
    #: The guests' access tag, and the network's 802.1Q tag on the uplink.
    vlan: int | None = None
    #: The tags a guest's port trunks (and the uplink carries), instead of ``vlan``.
    trunk: tuple[int, ...] | None = None
    uplink: Uplink | None = None
    #: The MTU of the bridge and its uplink (the largest of the bridge's networks').
    mtu: int | None = None
    #: Whether the map names the bridge (else it is the uplink's computed or named bridge).
    bridge_given: bool = True
    #: An untagged network on a bridge with an uplink: the bridge-internal VLAN that carries it
    #: (its guests' access tag; the uplink sends it untagged, ``vlan_mode=native-untagged``).
    native_vlan: int | None = None
    #: Portgroups, by name in the file's order, and the one a guest naming none gets.
    portgroups: tuple[Portgroup, ...] = ()
    default_portgroup: str | None = None
    #: ``<bandwidth>`` every guest of the network gets (a portgroup's wins).
    bandwidth: Bandwidth | None = None
    #: The network's values win over a guest's different ones (else such a guest is refused).
    override: bool = False
    #: Its index in the network's priority list (``[[networks.NAME.options]]``); None: the
    #: network's single definition.
    option: int | None = None

    @property
    def switch(self) -> str:
        return "ovs"

    @property
    def access_tag(self) -> int | None:
        """The tag a guest's port on this network gets (None: no tag, or a trunk)."""
        return self.vlan if self.vlan is not None else self.native_vlan

    def describe(self) -> str:
        tags = (f", vlan {self.vlan}" if self.vlan is not None else
                f", trunk {','.join(map(str, self.trunk))}" if self.trunk else "")
        native = (f", untagged on the uplink (vlan {self.native_vlan} inside the bridge)"
                  if self.native_vlan is not None else "")
        uplink = _uplink_text(self.uplink, "", self.mtu)
        return f"OVS bridge {self.bridge}{tags}{uplink}{native}{_host_text(self)}"


class OvnNetwork(NamedTuple):
    """An OVN logical switch, reached through this host's integration bridge. A guest's port on
    it is an OVS port whose ``external_ids:iface-id`` (the libvirt ``interfaceid``) is the name
    of its logical switch port; ovn-controller binds it, so no VLAN is ever set locally."""

    name: str
    logical_switch: str
    bridge: str = DEFAULT_OVN_BRIDGE
    #: Portgroups, by name in the file's order, and the one a guest naming none gets.
    portgroups: tuple[Portgroup, ...] = ()
    default_portgroup: str | None = None
    #: ``<bandwidth>`` every guest of the network gets (a portgroup's wins).
    bandwidth: Bandwidth | None = None
    #: The network's values win over a guest's different ones (else such a guest is refused).
    override: bool = False
    #: Its index in the network's priority list (``[[networks.NAME.options]]``); None: the
    #: network's single definition.
    option: int | None = None

    @property
    def switch(self) -> str:
        return "ovn"

    def describe(self) -> str:
        return f"OVN logical switch {self.logical_switch} on {self.bridge}{_host_text(self)}"


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
    #: Portgroups, by name in the file's order, and the one a guest naming none gets.
    portgroups: tuple[Portgroup, ...] = ()
    default_portgroup: str | None = None
    #: ``<bandwidth>`` every guest of the network gets (a portgroup's wins).
    bandwidth: Bandwidth | None = None
    #: The network's values win over a guest's different ones (else such a guest is refused).
    override: bool = False
    #: Its index in the network's priority list (``[[networks.NAME.options]]``); None: the
    #: network's single definition.
    option: int | None = None
    #: ``<interface trustGuestRxFilters>`` for every guest (a portgroup's wins).
    trust_guest_rx_filters: bool | None = None
    #: A pool of NICs (``interfaces = [...]``) instead of one ``interface`` (then ""): each
    #: guest interface gets one of them (vifplug.pools).
    pool: tuple[str, ...] = ()

    @property
    def switch(self) -> str:
        return "direct"

    @property
    def exclusive(self) -> bool:
        """Each NIC serves one guest interface at a time: passthrough mode (the guest owns
        the NIC) and 802.1Qbh (a port profile per NIC)."""
        return self.mode == "passthrough" or self.qbh_profile_id is not None

    @property
    def nics(self) -> tuple[str, ...]:
        """The NICs guests of the network may land on."""
        return self.pool or (self.interface,)

    def describe(self) -> str:
        profile = (" with 802.1Qbg" if self.qbg is not None else
                   f" with 802.1Qbh profile {self.qbh_profile_id}" if self.qbh_profile_id else "")
        trust = ("" if self.trust_guest_rx_filters is None else
                 f", trustGuestRxFilters {'yes' if self.trust_guest_rx_filters else 'no'}")
        share = "one guest per NIC" if self.exclusive else "least used first"
        where = f"a pool of {', '.join(self.pool)} ({share})" if self.pool else self.interface
        return f"macvtap on {where} ({self.mode}){profile}{trust}{_host_text(self)}"


MappedNetwork = LegacyNetwork | OvsNetwork | OvnNetwork | DirectNetwork


def _host_text(network: MappedNetwork) -> str:
    """``, bandwidth …, override, portgroups a (default), b`` for :meth:`describe`."""
    text = f", bandwidth {network.bandwidth.text()}" if network.bandwidth is not None else ""
    text += ", override" if network.override else ""
    if network.portgroups:
        text += ", portgroups " + ", ".join(
            group.name + (" (default)" if group.name == network.default_portgroup else "")
            for group in network.portgroups)
    return text


def find_portgroup(network: MappedNetwork, name: str) -> Portgroup | None:
    """The network's portgroup called ``name``, if it has one."""
    return next((group for group in network.portgroups if group.name == name), None)


def definition_key(network: MappedNetwork) -> str:
    """``red`` for a network's single definition, ``red.options[1]`` for one of its options
    (never a network's name: a name has no brackets)."""
    return network.name if network.option is None else f"{network.name}.options[{network.option}]"


def table_of(network: MappedNetwork) -> tuple[str, ...]:
    """The map key of a definition's table: ``("networks", "red")``, or
    ``("networks", "red", "options[1]")`` for an option."""
    where = ("networks", network.name)
    return where if network.option is None else (*where, f"options[{network.option}]")


_OPTION_KEY = re.compile(r"^(.+)\.(options\[\d+\])$")


def split_key(where: tuple[str, ...]) -> tuple[str, ...]:
    """A key naming a definition by :func:`definition_key` (``networks``,
    ``red.options[1]``, ...) as the file's path (``networks``, ``red``, ``options[1]``, ...)."""
    if len(where) >= 2 and where[0] == "networks":
        found = _OPTION_KEY.match(where[1])
        if found:
            return ("networks", found.group(1), found.group(2), *where[2:])
    return where


class NetworkMap(NamedTuple):
    """This host's networks by name, and the file they came from."""

    path: str
    networks: Mapping[str, MappedNetwork]
    #: ``allow_mixed = true``: ``host apply`` accepts legacy and ovs networks together
    #: (unsupported: a switch transition is then not one step).
    allow_mixed: bool = False
    #: The file's text, to name the line of a key in later errors (:meth:`error`).
    text: str = ""
    #: ``strict = false``: the hook's ``migrate begin`` skips the device checks (the bridge, OVS
    #: bridge or NIC exists, the MTU fits) and only rewrites; ``vifplug hook check`` still runs
    #: them.
    strict: bool = True
    #: The networks that list connection options (``[[networks.NAME.options]]``), each with
    #: its options in the file's order; :attr:`networks` holds the first of them.
    options: Mapping[str, tuple[MappedNetwork, ...]] = {}

    def get(self, name: str) -> MappedNetwork | None:
        return self.networks.get(name)

    def definitions(self, name: str) -> tuple[MappedNetwork, ...]:
        """The ways this host may connect network ``name``, in priority order: its options,
        or its single definition; () when the map lacks it."""
        if name in self.options:
            return self.options[name]
        network = self.networks.get(name)
        return () if network is None else (network,)

    def every_definition(self) -> dict[str, MappedNetwork]:
        """Every definition of every network, by :func:`definition_key` (``red``, or
        ``red.options[1]`` for an option): what ``host apply`` builds, pools hold, audits
        compare against."""
        found: dict[str, MappedNetwork] = {}
        for name, network in self.networks.items():
            for each in self.options.get(name, (network,)):
                found[definition_key(each)] = each
        return found

    def error(self, where: tuple[str, ...], message: str) -> NetworkMapError:
        """``file:line: networks.X.key: message`` for a rule checked after loading."""
        return _Locator(self.path, self.text).error(where, message)

    def place(self, where: tuple[str, ...]) -> str:
        """``file:line`` of a table or key (just ``file`` when the line is not found)."""
        line = _Locator(self.path, self.text).line(where)
        return f"{self.path}:{line}" if line else self.path


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
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise NetworkMapError(f"{where}:{line}: not UTF-8 text (byte {exc.start})") from None
    return parse_network_map(text, where)


def parse_network_map(text: str, where: str) -> NetworkMap:
    """Validate a network map's ``text`` (errors name ``where`` as its file)."""
    data = _parse_toml(where, text)
    at = _Locator(where, text)
    definitions = _networks(data, at)
    from vifplug import netlayout, options  # here: they build on this module's types

    try:  # every option is on the host at once (host apply builds them all): one layout
        definitions = netlayout.resolve(definitions)
        options.check(definitions)
    except MapRuleError as exc:
        raise at.error(exc.where, exc.reason) from None
    networks: dict[str, MappedNetwork] = {}
    listed: dict[str, tuple[MappedNetwork, ...]] = {}
    for network in definitions.values():
        if network.option is None:
            networks[network.name] = network
        else:
            listed[network.name] = (*listed.get(network.name, ()), network)
            networks.setdefault(network.name, network)
    return NetworkMap(where, networks, _allow_mixed(data, at), text,
                      _flag(data, "strict", True, at), listed)


#: The deepest nesting of arrays and inline tables a map may have (a real one has 2; tomllib
#: recurses per level, and Python's stack gives out near 1,000).
MAX_NESTING = 32


def _parse_toml(where: str, text: str) -> dict[str, Any]:
    """``text`` as TOML; every error one line with ``file:line``."""
    deep = _too_deep(text)
    if deep is not None:
        raise NetworkMapError(f"{where}:{deep}: not valid TOML for a network map: arrays or "
                              f"inline tables nested more than {MAX_NESTING} deep")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib says "... (at line 3, column 10)" or "... (at end of document)": put the line
        # where every other error has it
        message = " ".join(str(exc).split())
        found = re.search(r"^(.*) \(at line (\d+), column \d+\)$", message)
        if found:
            raise NetworkMapError(f"{where}:{found.group(2)}: not valid TOML: "
                                  f"{found.group(1)}") from None
        found = re.search(r"^(.*) \(at end of document\)$", message)
        if found:
            last = max(1, len(text.splitlines()))
            raise NetworkMapError(f"{where}:{last}: not valid TOML: {found.group(1)} (at the "
                                  "end of the file)") from None
        raise NetworkMapError(f"{where}:1: not valid TOML: {message}") from None


def _too_deep(text: str) -> int | None:
    """The line where arrays and inline tables first nest deeper than MAX_NESTING, else None.
    Brackets inside strings and comments do not count; a table header's ``[[`` is depth 1 at
    most, as it closes on its own line."""
    depth, line, quote = 0, 1, ""
    i, end = 0, len(text)
    while i < end:
        char = text[i]
        if char == "\n":
            line += 1
        if quote:
            if char == "\\" and quote == '"':
                i += 2
                continue
            if text.startswith(quote, i):
                i += len(quote)
                quote = ""
                continue
        elif char in "\"'":
            quote = char * 3 if text.startswith(char * 3, i) else char
            i += len(quote)
            continue
        elif char == "#":
            newline = text.find("\n", i)
            i = end if newline < 0 else newline
            continue
        elif char in "[{":
            depth += 1
            if depth > MAX_NESTING:
                return line
        elif char in "]}":
            depth = max(0, depth - 1)
        i += 1
    return None


class _Locator:
    """Finds the line of a table or key in the file, for error messages."""

    _HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(?:#.*)?$")
    _ARRAY = re.compile(r"^\s*\[\[\s*([^\[\]]+?)\s*\]\]\s*(?:#.*)?$")
    _KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'.]+)\s*=")

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def error(self, where: tuple[str, ...], message: str) -> NetworkMapError:
        where = split_key(where)
        line = self.line(where)
        at = f"{self.path}:{line}" if line else str(self.path)
        return NetworkMapError(f"{at}: {'.'.join(where)}: {message}")

    def line(self, where: tuple[str, ...]) -> int | None:
        where = split_key(where)
        table: tuple[str, ...] = ()
        best: int | None = None  # else: the header of the deepest table holding it
        depth = 1
        arrays: dict[tuple[str, ...], int] = {}  # [[array.of.tables]] -> its last index
        for number, text in enumerate(self.lines, 1):
            array = self._ARRAY.match(text)
            header = None if array else self._HEADER.match(text)
            if array:
                path = _dotted(array.group(1))
                arrays[path] = arrays.get(path, -1) + 1
                table = (*path[:-1], f"{path[-1]}[{arrays[path]}]")
            elif header:
                table = _in_arrays(_dotted(header.group(1)), arrays)
            if array or header:
                if table == where:
                    return number
                if table == where[:len(table)] and len(table) > depth:
                    best, depth = number, len(table)
                continue
            key = self._KEY.match(text)
            path = (*table, *_dotted(key.group(1))) if key else ()
            if path == where:
                return number
            if path and path == where[:len(path)] and len(path) > depth:
                best, depth = number, len(path)  # an inline table's key: the line holding it
        return best


def _in_arrays(path: tuple[str, ...], arrays: Mapping[tuple[str, ...], int]) -> tuple[str, ...]:
    """A table header's path with an array of tables it extends indexed (TOML: a
    ``[a.b.c]`` after ``[[a.b]]`` is a table of a.b's last element): ``a.b[2].c``."""
    for length in range(len(path) - 1, 0, -1):
        index = arrays.get(path[:length])
        if index is not None:
            return (*path[:length - 1], f"{path[length - 1]}[{index}]", *path[length:])
    return path


def _dotted(text: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in text.split("."))


_UPLINK_KEYS = frozenset({"nic", "bond", "mtu"})
#: What every network may give beside its switch's keys (portgroups and the merge rule).
_HOST_KEYS = frozenset({"portgroups", "default_portgroup", "bandwidth", "override"})
_KEYS: dict[str, frozenset[str]] = {
    "legacy": frozenset({"switch", "bridge", "vlan"}) | _UPLINK_KEYS | _HOST_KEYS,
    "ovs": frozenset({"switch", "bridge", "vlan", "trunk"}) | _UPLINK_KEYS | _HOST_KEYS,
    "ovn": frozenset({"switch", "bridge", "logical_switch"}) | _HOST_KEYS,
    "direct": frozenset({"switch", "interface", "interfaces", "mode", "qbg", "qbh",
                         "trust_guest_rx_filters"}) | _HOST_KEYS,
}


def _networks(data: dict[str, Any], at: _Locator) -> dict[str, MappedNetwork]:
    """Every definition by :func:`definition_key`: a network's single one under its name, each
    of its options under ``NAME.options[N]``."""
    for key in data:
        if key not in ("networks", "allow_mixed", "strict"):
            raise at.error((key,), "unknown key (the map holds [networks.NAME] tables, "
                           "allow_mixed and strict)")
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
        if "options" not in table:
            networks[name] = _definition(name, table, where, at)
            continue
        other = next(iter(key for key in table if key != "options"), None)
        if other is not None:
            raise at.error((*where, other), "a network gives either a priority list "
                           "([[networks.NAME.options]]) or a single definition, not both: move "
                           "this key into its options")
        options = table["options"]
        if not isinstance(options, list) or not options \
                or not all(isinstance(option, dict) for option in options):
            raise at.error((*where, "options"), "must be an array of tables, one per "
                           "connection option in priority order ([[networks.NAME.options]])")
        for index, option in enumerate(options):
            place = (*where, f"options[{index}]")
            if "options" in option:
                raise at.error((*place, "options"), "an option is one switch definition: it "
                               "has no options of its own")
            network = _definition(name, option, place, at)._replace(option=index)
            networks[definition_key(network)] = network
    return networks


def _definition(name: str, table: dict[str, Any], where: tuple[str, ...],
                at: _Locator) -> MappedNetwork:
    """One switch definition: a ``[networks.NAME]`` table, or one of its options."""
    switch = table.get("switch")
    if not isinstance(switch, str) or switch not in _KEYS:
        raise at.error((*where, "switch"), "must be one of 'legacy', 'ovs', 'ovn', 'direct' "
                       f"(got {switch!r})")
    for key in table:
        if key not in _KEYS[switch]:
            raise at.error((*where, key), f"unknown key for switch {switch!r} (known: "
                           f"{', '.join(sorted(_KEYS[switch]))})")
    network = _BUILDERS[switch](name, table, where, at)
    return _with_host_settings(network, table, where, at)


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


def _allow_mixed(data: dict[str, Any], at: _Locator) -> bool:
    return _flag(data, "allow_mixed", False, at)


def _flag(data: dict[str, Any], key: str, default: bool, at: _Locator) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise at.error((key,), f"must be true or false (got {value!r})")
    return value


def _uplink(switch: str, table: dict[str, Any], where: tuple[str, ...],
            at: _Locator) -> Uplink | None:
    if "nic" in table and "bond" in table:
        raise at.error((*where, "bond"), "give one uplink: 'nic' or 'bond', not both")
    if "nic" in table:
        return Nic(_device(table, "nic", where, at))
    if "bond" in table:
        return _bond(switch, table["bond"], (*where, "bond"), at)
    return None


def _bond(switch: str, table: object, where: tuple[str, ...], at: _Locator) -> Bond:
    if not isinstance(table, dict):
        raise at.error(where, "must be a table: {name = ..., nics = [...], mode = ...}")
    for key in table:
        if key not in ("name", "nics", "mode"):
            raise at.error((*where, key), "unknown key (known: mode, name, nics)")
    name = _device(table, "name", where, at)
    nics = _bond_nics(table.get("nics"), 2 if switch == "ovs" else 1, (*where, "nics"), at)
    if name in nics:
        raise at.error((*where, "nics"), f"must not hold the bond itself ({name!r})")
    modes = tuple(OVS_BOND_MODES) if switch == "ovs" else LEGACY_BOND_MODES
    mode = table.get("mode", DEFAULT_BOND_MODE)
    if mode not in modes:
        raise at.error((*where, "mode"), f"must be one of {', '.join(modes)} for switch "
                       f"{switch!r} (got {mode!r})")
    return Bond(name, nics, mode)


def _bond_nics(value: object, least: int, where: tuple[str, ...],
               at: _Locator) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) < least:
        need = "one NIC" if least == 1 else f"{least} NICs (an OVS bond has at least {least})"
        raise at.error(where, f"must be a list of at least {need} (got {value!r})")
    for nic in value:
        try:
            check_device_name(nic)
        except (TypeError, ValueError) as exc:
            raise at.error(where, f"{exc} (got {nic!r})") from None
    if len(set(value)) != len(value):
        raise at.error(where, "must not repeat a NIC")
    return tuple(value)


def _mtu(table: dict[str, Any], where: tuple[str, ...], at: _Locator) -> int | None:
    if "mtu" not in table:
        return None
    return _int(table["mtu"], spec.MTU_MIN, spec.MTU_MAX, (*where, "mtu"), at)


def _legacy(name: str, table: dict[str, Any], where: tuple[str, ...],
            at: _Locator) -> MappedNetwork:
    bridge = _device(table, "bridge", where, at, default=name)
    uplink = _uplink("legacy", table, where, at)
    vlan = None
    if "vlan" in table:
        vlan = _int(table["vlan"], spec.VLAN_MIN, spec.VLAN_MAX, (*where, "vlan"), at)
        if uplink is None:
            raise at.error((*where, "vlan"), "needs an uplink ('nic' or 'bond'): a Linux bridge "
                           "is VLAN-unaware, the VLAN is a device on the uplink")
    return LegacyNetwork(name, bridge, uplink, vlan, _mtu(table, where, at))


def _ovs(name: str, table: dict[str, Any], where: tuple[str, ...],
         at: _Locator) -> MappedNetwork:
    uplink = _uplink("ovs", table, where, at)
    if "bridge" in table:
        bridge = _device(table, "bridge", where, at)
    elif uplink is not None:  # the uplink's bridge; netlayout.resolve settles it
        bridge = uplink_bridge_name(uplink.name)
    else:
        raise at.error((*where, "bridge"), "required (or an uplink, 'nic' or 'bond', whose "
                       "bridge vifplug names)")
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
    return OvsNetwork(name, bridge, vlan, trunk, uplink, _mtu(table, where, at),
                      bridge_given="bridge" in table)


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
    pool = _pool(table, where, at)
    interface = "" if pool else _device(table, "interface", where, at)
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
    return DirectNetwork(name, interface, mode, qbg, profile, pool=pool)


def _pool(table: dict[str, Any], where: tuple[str, ...], at: _Locator) -> tuple[str, ...]:
    """``interfaces = [...]``: a pool of NICs, each named once; not with ``interface``."""
    if "interfaces" not in table:
        return ()
    key = (*where, "interfaces")
    if "interface" in table:
        raise at.error(key, "give 'interface' (one NIC) or 'interfaces' (a pool), not both")
    value = table["interfaces"]
    if not isinstance(value, list) or not value:
        raise at.error(key, f"must be a non-empty array of NIC names (got {value!r})")
    nics: list[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise at.error(key, f"item {index}: must be a string (got {item!r})")
        try:
            nic = check_device_name(item)
        except ValueError as exc:
            raise at.error(key, f"item {index}: {exc} (got {item!r})") from None
        if nic in nics:
            raise at.error(key, f"NIC {nic} is listed twice (a pool names each NIC once)")
        nics.append(nic)
    return tuple(nics)


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


# --- portgroups and the host's settings the merge rule weighs (vifplug.merge) -------------------

_QBG_KEYS = ("manager_id", "type_id", "type_id_version")
#: The keys a portgroup takes, per switch of its network.
_PORTGROUP_KEYS: dict[str, frozenset[str]] = {
    "legacy": frozenset({"bandwidth", "override"}),
    "ovs": frozenset({"vlan", "trunk", "bandwidth", "override"}),
    "ovn": frozenset({"bandwidth", "override"}),
    "direct": frozenset({*_QBG_KEYS, "profile_id", "bandwidth", "trust_guest_rx_filters",
                         "override"}),
}
#: Why a portgroup key is refused on a switch that does not take it.
_NOT_VLAN = {"legacy": "a Linux bridge is VLAN-unaware (one legacy network per VLAN, tagged "
                       "on its uplink)",
             "ovn": "OVN carries the network: no local VLAN",
             "direct": "only an ovs network's portgroups give a VLAN"}
_NOT_PROFILE = "802.1Qbg/802.1Qbh port profiles are for direct (macvtap) networks only"
_NOT_TRUST = "only for direct (macvtap) networks"


def _with_host_settings(network: MappedNetwork, table: dict[str, Any], where: tuple[str, ...],
                        at: _Locator) -> MappedNetwork:
    """``network`` with its bandwidth, override, trust and portgroups (checked) filled in."""
    bandwidth = _bandwidth(table["bandwidth"], (*where, "bandwidth"), at) \
        if "bandwidth" in table else None
    override = _bool(table, "override", where, at)
    groups = table.get("portgroups", {})
    if not isinstance(groups, dict):
        raise at.error((*where, "portgroups"), "must be a table of portgroups "
                       "([networks.NAME.portgroups.GROUP])")
    portgroups = tuple(_portgroup(network, group, body, (*where, "portgroups", group), at)
                       for group, body in groups.items())
    default = table.get("default_portgroup")
    if default is not None and not isinstance(default, str):
        raise at.error((*where, "default_portgroup"), f"must be a string (got {default!r})")
    if portgroups and default is None:
        raise at.error((*where, "default_portgroup"), "required: a network with portgroups "
                       f"names its default ({', '.join(g.name for g in portgroups)})")
    if default is not None and default not in groups:
        have = (f"its portgroups: {', '.join(g.name for g in portgroups)}" if portgroups
                else "it has none")
        raise at.error((*where, "default_portgroup"), f"names no portgroup of network "
                       f"{network.name!r} (got {default!r}; {have})")
    extra: dict[str, Any] = {}
    if isinstance(network, DirectNetwork):
        extra["trust_guest_rx_filters"] = _bool(table, "trust_guest_rx_filters", where, at,
                                                default=None)
    return network._replace(portgroups=portgroups, default_portgroup=default,
                            bandwidth=bandwidth, override=override, **extra)


def _portgroup(network: MappedNetwork, name: str, table: object, where: tuple[str, ...],
               at: _Locator) -> Portgroup:
    try:
        check_network_name(name)
    except ValueError as exc:
        raise at.error(where, f"portgroup name {exc}") from None
    if not isinstance(table, dict):
        raise at.error(where, "must be a table ([networks.NAME.portgroups.GROUP])")
    switch = network.switch
    known = _PORTGROUP_KEYS[switch]
    for key in table:
        if key in known:
            continue
        reason = (_NOT_VLAN.get(switch) if key in ("vlan", "trunk") else
                  _NOT_PROFILE if key in (*_QBG_KEYS, "profile_id") else
                  _NOT_TRUST if key == "trust_guest_rx_filters" else None)
        if reason is not None:
            raise at.error((*where, key), f"not for a portgroup of switch {switch!r}: {reason}")
        raise at.error((*where, key), f"unknown key for a portgroup of switch {switch!r} "
                       f"(known: {', '.join(sorted(known))})")
    vlan = trunk = None
    if "vlan" in table:
        vlan = _int(table["vlan"], spec.VLAN_MIN, spec.VLAN_MAX, (*where, "vlan"), at)
    if "trunk" in table:
        if vlan is not None:
            raise at.error((*where, "trunk"), "cannot be combined with 'vlan' (give one)")
        trunk = _trunk(table["trunk"], (*where, "trunk"), at)
    qbg = profile = None
    given = [key for key in _QBG_KEYS if key in table]
    if given:
        missing = [key for key in _QBG_KEYS if key not in table]
        if missing:
            raise at.error((*where, given[0]), "802.1Qbg needs all three of manager_id, "
                           f"type_id, type_id_version (missing: {', '.join(missing)})")
        qbg = _qbg({key: table[key] for key in _QBG_KEYS}, where, at)
    if "profile_id" in table:
        if qbg is not None:
            raise at.error((*where, "profile_id"), "give 802.1Qbg's manager_id, type_id, "
                           "type_id_version or 802.1Qbh's profile_id, not both")
        profile = _profile_id(table["profile_id"], (*where, "profile_id"), at)
    if isinstance(network, DirectNetwork):
        if profile is not None and network.qbg is not None:
            raise at.error((*where, "profile_id"), "the network gives 802.1Qbg parameters "
                           "([qbg]): its portgroups cannot switch to an 802.1Qbh profile")
        if qbg is not None and network.qbh_profile_id is not None:
            raise at.error((*where, given[0]), "the network gives an 802.1Qbh profile ([qbh]): "
                           "its portgroups cannot switch to 802.1Qbg")
    bandwidth = _bandwidth(table["bandwidth"], (*where, "bandwidth"), at) \
        if "bandwidth" in table else None
    return Portgroup(name, vlan, trunk, qbg, profile, bandwidth,
                     _bool(table, "trust_guest_rx_filters", where, at, default=None),
                     _bool(table, "override", where, at))


def _trunk(items: object, where: tuple[str, ...], at: _Locator) -> tuple[int, ...]:
    if not isinstance(items, list) or not items:
        raise at.error(where, f"must be a non-empty list of VLANs (got {items!r})")
    trunk = tuple(_int(item, spec.VLAN_MIN, spec.VLAN_MAX, where, at) for item in items)
    if len(set(trunk)) != len(trunk):
        raise at.error(where, "must not repeat a VLAN")
    return trunk


def _profile_id(value: object, where: tuple[str, ...], at: _Locator) -> str:
    if not isinstance(value, str):
        raise at.error(where, f"must be a string (got {value!r})")
    try:
        return check_profile_id(value)
    except ValueError as exc:
        raise at.error(where, f"{exc} (got {value!r})") from None


def _bool(table: dict[str, Any], key: str, where: tuple[str, ...], at: _Locator,
          default: bool | None = False) -> Any:
    value = table.get(key, default)
    if value is not default and not isinstance(value, bool):
        raise at.error((*where, key), f"must be true or false (got {value!r})")
    return value


def _bandwidth(table: object, where: tuple[str, ...], at: _Locator) -> Bandwidth:
    """vif.json's ``bandwidth`` shape, with its limits (:data:`vifplug.spec.SPEED_MAX`)."""
    if not isinstance(table, dict):
        raise at.error(where, "must be a table: {inbound = {average = ...}, outbound = ...}")
    rates: dict[str, Rate] = {}
    for direction, body in table.items():
        if direction not in ("inbound", "outbound"):
            raise at.error((*where, direction), "unknown key (known: inbound, outbound)")
        place = (*where, direction)
        if not isinstance(body, dict):
            raise at.error(place, "must be a table: {average = ..., peak = ..., burst = ...}")
        for key in body:
            if key not in ("average", "peak", "burst"):
                raise at.error((*place, key), "unknown key (known: average, burst, peak)")
        if "average" not in body:
            raise at.error((*place, "average"), "required")
        numbers = {key: _int(body[key], spec.SPEED_MIN, spec.SPEED_MAX, (*place, key), at)
                   for key in ("average", "peak", "burst") if key in body}
        rates[direction] = Rate(**numbers)
    if not rates:
        raise at.error(where, "must give 'inbound' or 'outbound' (or both)")
    return Bandwidth(rates.get("inbound"), rates.get("outbound"))
