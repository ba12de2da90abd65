"""The VIF model: what a guest NIC is, validated against vif.json format 1.

A :class:`Vif` is an immutable, hashable value. Build one with :func:`load_vifs` (a file, a JSON
text or parsed data) or :meth:`Vif.parse`; both raise :class:`~vifplug.errors.InvalidVifError`
naming the JSON path of every broken rule (``$.network.vlan: must be at most 4094 (got 5000)``).

The rules are those of ``VIF_FORMAT.md``; each field's ``#:`` comment says what it maps to in
libvirt's domain XML or on the host.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import typing
from collections.abc import Iterator, Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    Strict,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

from vifplug.errors import InvalidVifError, json_path
from vifplug.names import check_device_name, check_network_name, check_profile_id

__all__ = [
    "Bandwidth",
    "DirectParams",
    "Filter",
    "HostDevParams",
    "Network",
    "OvsParams",
    "QbgParams",
    "QbhParams",
    "Rate",
    "VhostUserParams",
    "Vif",
    "check_device_name",
    "load_vifs",
    "parse_vif_json",
    "vifs_from_data",
]

VifType = Literal[
    "bridge", "ovs", "802.1qbg", "802.1qbh", "direct", "ethernet", "vhostuser", "hostdev"
]
VIF_TYPES: tuple[str, ...] = typing.get_args(VifType)
PlugMethod = Literal["hybrid", "virtualport", "manual"]
DirectMode = Literal["vepa", "bridge", "private", "passthrough"]

#: Length of the id prefix in tap/qbr/qvb/qvo names (nova, os-vif and neutron agents agree on 11).
NIC_NAME_ID_LEN = 11

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_MAC = re.compile(r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}")
_PCI = re.compile(r"([0-9a-fA-F]{4}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])")
_MODEL = re.compile(r"[A-Za-z0-9_\-]{1,32}")
_FILTER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,127}")
_FILTER_PARAM = re.compile(r"[A-Za-z0-9_]{1,64}")
_FILTER_VALUE = re.compile(r"[A-Za-z0-9_.:]{1,256}")
#: sun_path is 108 bytes including the terminating NUL.
_UNIX_PATH_MAX = 107


class _RuleError(ValueError):
    """Raised inside validators: problems located relative to the value being validated."""

    def __init__(self, problems: Sequence[tuple[tuple[str | int, ...], str]]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(message for _, message in self.problems))


def _rule(loc: tuple[str | int, ...], message: str) -> _RuleError:
    return _RuleError([(loc, message)])


# --- value checks (each returns the normalised value or raises ValueError with the expectation) ---


def _uuid(value: str) -> str:
    if not _UUID.fullmatch(value):
        raise ValueError("must be a UUID like 0f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f")
    return value.lower()


def _mac(value: str) -> str:
    if not _MAC.fullmatch(value):
        raise ValueError("must be a MAC address xx:xx:xx:xx:xx:xx")
    if int(value[:2], 16) & 1:
        raise ValueError("must be a unicast MAC address (the first octet's multicast bit is set)")
    if value == "00:00:00:00:00:00":
        raise ValueError("must not be the all-zero MAC address")
    return value.lower()


def _pci(value: str) -> str:
    match = _PCI.fullmatch(value)
    if not match:
        raise ValueError("must be a PCI address DDDD:BB:SS.F like 0000:3b:00.2")
    if int(match.group(3), 16) > 0x1F:
        raise ValueError("must be a PCI address whose slot is at most 1f")
    return value.lower()


def _network_name(value: str) -> str:
    return check_network_name(value)


def _model_name(value: str) -> str:
    if not _MODEL.fullmatch(value):
        raise ValueError("must be a NIC model name of 1 to 32 letters, digits, '_' and '-'")
    return value


def _filter_name(value: str) -> str:
    if not _FILTER_NAME.fullmatch(value):
        raise ValueError("must be an nwfilter name: a letter or '_', then letters, digits, '_.-'")
    return value


def _socket_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError("must be an absolute path")
    if len(value.encode()) > _UNIX_PATH_MAX:
        raise ValueError(f"must be at most {_UNIX_PATH_MAX} bytes (a UNIX socket path)")
    if any(ord(c) < 0x20 or c == "\x7f" for c in value):
        raise ValueError("must not contain control characters")
    if "/../" in value + "/" or value.endswith("/"):
        raise ValueError("must name a file, without '..' components")
    return value


def _profile_id(value: str) -> str:
    return check_profile_id(value)


def _filter_parameters(value: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping):
        raise ValueError("must be an object of parameter name to value strings")
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for key, item in value.items():
        if not isinstance(key, str) or not _FILTER_PARAM.fullmatch(key):
            problems.append(((str(key),), "parameter names are 1 to 64 letters, digits and '_'"))
        elif not isinstance(item, str) or not _FILTER_VALUE.fullmatch(item):
            problems.append(
                ((key,), f"must be a string of letters, digits, '_', '.' and ':' (got {item!r})")
            )
    if problems:
        raise _RuleError(problems)
    return tuple(value.items())


def _non_empty(value: tuple[int, ...]) -> tuple[int, ...]:
    # Checked after the items (not with min_length, which pydantic also reports when every item
    # was invalid, a second and false error).
    if not value:
        raise ValueError("must hold at least one VLAN")
    return value


def _device(value: str) -> str:
    return check_device_name(value)


def _target_device(value: str) -> str:
    return check_device_name(value, reserved=True)


Str = Annotated[str, Strict()]
Bool = Annotated[bool, Strict()]
Uuid = Annotated[str, Strict(), AfterValidator(_uuid), WithJsonSchema(
    {"type": "string", "format": "uuid", "pattern": "^" + _UUID.pattern + "$"}
)]
DeviceName = Annotated[str, Strict(), AfterValidator(_device), WithJsonSchema(
    {"type": "string", "pattern": r"^[A-Za-z0-9_.\-]{1,15}$", "not": {"enum": [".", ".."]}}
)]
Vlan = Annotated[int, Strict(), Field(ge=1, le=4094)]
UInt8 = Annotated[int, Strict(), Field(ge=0, le=255)]
UInt24 = Annotated[int, Strict(), Field(ge=0, le=2**24 - 1)]
Mtu = Annotated[int, Strict(), Field(ge=68, le=65535)]
Queues = Annotated[int, Strict(), Field(ge=1, le=256)]
Speed = Annotated[int, Strict(), Field(ge=1, le=2**32 - 1)]
MacAddress = Annotated[str, Strict(), AfterValidator(_mac), WithJsonSchema(
    {"type": "string", "pattern": "^[0-9a-fA-F][02468aceACE](:[0-9a-fA-F]{2}){5}$"}
)]
NetworkName = Annotated[str, Strict(), AfterValidator(_network_name), WithJsonSchema(
    {"type": "string", "pattern": r"^[A-Za-z0-9_.\-]{1,64}$"}
)]
ModelName = Annotated[str, Strict(), AfterValidator(_model_name), WithJsonSchema(
    {"type": "string", "pattern": r"^[A-Za-z0-9_\-]{1,32}$"}
)]
FilterName = Annotated[str, Strict(), AfterValidator(_filter_name), WithJsonSchema(
    {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$"}
)]
ProfileId = Annotated[str, Strict(), AfterValidator(_profile_id), WithJsonSchema(
    {"type": "string", "pattern": "^[ !#-%(-;=?-~]{1,39}$"}
)]
SocketPath = Annotated[str, Strict(), AfterValidator(_socket_path), WithJsonSchema(
    {"type": "string", "pattern": "^/", "maxLength": _UNIX_PATH_MAX}
)]
PciAddress = Annotated[str, Strict(), AfterValidator(_pci), WithJsonSchema(
    {"type": "string", "pattern": r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[01][0-9a-fA-F]\.[0-7]$"}
)]
FilterParameters = Annotated[
    tuple[tuple[str, str], ...],
    BeforeValidator(_filter_parameters),
    PlainSerializer(dict, return_type=dict[str, str]),
    WithJsonSchema({
        "type": "object",
        "propertyNames": {"pattern": "^[A-Za-z0-9_]{1,64}$"},
        "additionalProperties": {"type": "string", "pattern": "^[A-Za-z0-9_.:]{1,256}$"},
    }),
]


class _Value(BaseModel):
    """Immutable, strict, closed: unknown keys are errors (a typo must not be ignored)."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class Rate(_Value):
    """One direction of ``<bandwidth>``: ``<inbound>`` or ``<outbound>``."""

    #: ``average`` attribute: average rate in kB/s (required).
    average: Speed
    #: ``peak`` attribute: the rate bursts may reach, kB/s.
    peak: Speed | None = None
    #: ``burst`` attribute: kB that may be sent at ``peak``.
    burst: Speed | None = None


class Bandwidth(_Value):
    """Maps to ``<bandwidth>`` (libvirt QoS on the host side of the NIC)."""

    #: ``<inbound>``: traffic towards the guest.
    inbound: Rate | None = None
    #: ``<outbound>``: traffic from the guest.
    outbound: Rate | None = None

    @model_validator(mode="after")
    def _one_direction(self) -> Bandwidth:
        if self.inbound is None and self.outbound is None:
            raise _rule((), "must give 'inbound' or 'outbound' (or both)")
        return self


class Filter(_Value):
    """Maps to ``<filterref filter=name>`` with one ``<parameter>`` per item (libvirt nwfilter)."""

    #: ``filter`` attribute: the nwfilter name, e.g. ``clean-traffic``.
    name: FilterName
    #: ``<parameter name value>`` children, in the given order.
    parameters: FilterParameters = Field(default=(), json_schema_extra={"default": {}})


class OvsParams(_Value):
    """The OVS port identity."""

    #: ``<parameters interfaceid>`` of the openvswitch virtualport; ``external_ids:iface-id``.
    interface_id: Uuid
    #: The OVS bridge's datapath (``system`` kernel, ``netdev`` userspace).
    datapath_type: Literal["system", "netdev"] | None = None


class QbgParams(_Value):
    """Maps to ``<virtualport type='802.1Qbg'><parameters .../>`` (VEPA / VDP)."""

    #: ``managerid``: the VSI Manager ID (0..255).
    manager_id: UInt8
    #: ``typeid``: the VSI Type ID (24 bits).
    type_id: UInt24
    #: ``typeidversion``: the VSI Type version (0..255).
    type_id_version: UInt8
    #: ``instanceid``: this VSI instance (one per guest NIC).
    instance_id: Uuid


class QbhParams(_Value):
    """Maps to ``<virtualport type='802.1Qbh'><parameters profileid/>`` (VN-Link)."""

    #: ``profileid``: the port profile name on the switch.
    profile_id: ProfileId


class DirectParams(_Value):
    """The macvtap mode: ``<source dev mode>`` of ``type='direct'``."""

    #: ``mode`` attribute; default ``vepa`` (``passthrough`` for 802.1qbh).
    mode: DirectMode | None = None


class VhostUserParams(_Value):
    """Maps to ``<source type='unix' path mode>`` of ``type='vhostuser'``."""

    #: ``path``: the vhost-user UNIX socket.
    socket: SocketPath
    #: ``mode``: whether QEMU is the socket's ``server`` (the default: OVS connects to it as a
    #: ``dpdkvhostuserclient`` port) or its ``client``.
    mode: Literal["client", "server"] = "server"


class HostDevParams(_Value):
    """Maps to ``<source><address type='pci' .../></source>`` of ``type='hostdev'``."""

    #: The SR-IOV virtual function's PCI address, ``DDDD:BB:SS.F``.
    pci: PciAddress


class Network(_Value):
    """The logical network the NIC joins, and how this host switches it."""

    #: The logical network name; the migration hook maps it to each host's switch.
    name: NetworkName
    #: ``<source bridge>``: the Linux bridge, or the OVS (integration) bridge.
    bridge: DeviceName | None = None
    #: ``<source dev>`` for macvtap kinds; the parent of ``<interface>.<vlan>`` for create_vlan.
    interface: DeviceName | None = None
    #: Access VLAN: ``<vlan><tag>`` or an OVS port tag or a VLAN sub-interface (see VIF_FORMAT.md).
    vlan: Vlan | None = None
    #: OVS trunk: ``<vlan trunk='yes'>`` with one ``<tag>`` each.
    trunk: Annotated[
        tuple[Vlan, ...], AfterValidator(_non_empty), Field(json_schema_extra={"minItems": 1})
    ] | None = None
    #: Plug creates the Linux bridge if missing (bridge only).
    create_bridge: Bool = False
    #: Plug creates ``<interface>.<vlan>`` and enslaves it to the bridge (bridge only).
    create_vlan: Bool = False

    @model_validator(mode="after")
    def _rules(self) -> Network:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        if self.vlan is not None and self.trunk is not None:
            problems.append((("trunk",), "cannot be combined with 'vlan' (give one of them)"))
        if self.trunk is not None and len(set(self.trunk)) != len(self.trunk):
            problems.append((("trunk",), "must not repeat a VLAN"))
        if self.create_vlan and (self.interface is None or self.vlan is None):
            problems.append((("create_vlan",), "needs 'network.interface' and 'network.vlan'"))
        elif self.create_vlan:
            try:
                check_device_name(f"{self.interface}.{self.vlan}")
            except ValueError as exc:
                problems.append((("create_vlan",), f"the VLAN device {self.interface}.{self.vlan} "
                                 f"{exc}; use a shorter 'network.interface'"))
        if problems:
            raise _RuleError(problems)
        return self


# What each vif_type needs and allows: one table read by Vif._rules (the spec's tables as data).
_REQUIRED: dict[str, tuple[tuple[str, ...], ...]] = {
    "bridge": (("network", "bridge"),),
    "ovs": (("network", "bridge"), ("ovs", "interface_id")),
    "802.1qbg": (("network", "interface"), ("qbg",)),
    "802.1qbh": (("network", "interface"), ("qbh",)),
    "direct": (("network", "interface"),),
    "ethernet": (),
    "vhostuser": (("vhostuser",),),
    "hostdev": (("hostdev",),),
}
_MACVTAP = frozenset({"802.1qbg", "802.1qbh", "direct"})
_ALL = frozenset(VIF_TYPES)
#: vif_types whose host side is a TAP named tap_name (created by plug or by libvirt).
_TAP_KINDS = frozenset({"bridge", "ovs", "ethernet"})
_ALLOWED: dict[tuple[str, ...], frozenset[str]] = {
    ("ovs",): frozenset({"ovs", "vhostuser"}),
    ("qbg",): frozenset({"802.1qbg"}),
    ("qbh",): frozenset({"802.1qbh"}),
    ("direct",): _MACVTAP,
    ("vhostuser",): frozenset({"vhostuser"}),
    ("hostdev",): frozenset({"hostdev"}),
    ("plug",): frozenset({"ovs"}),
    ("filter",): frozenset({"bridge", "ovs"}),
    ("devname",): _ALL - {"vhostuser", "hostdev"},
    ("model",): _ALL - {"hostdev"},
    ("mtu",): _ALL - {"hostdev"},
    ("queues",): _ALL - {"hostdev"},
    ("link_state",): _ALL - {"hostdev"},
    ("bandwidth",): _ALL - {"hostdev", "vhostuser"},
    ("network", "bridge"): frozenset({"bridge", "ovs", "vhostuser"}),
    ("network", "interface"): _MACVTAP | {"bridge"},
    ("network", "vlan"): _MACVTAP | {"bridge", "ovs", "hostdev"},
    ("network", "trunk"): frozenset({"ovs"}),
    ("network", "create_bridge"): frozenset({"bridge"}),
    ("network", "create_vlan"): frozenset({"bridge"}),
}


class Vif(_Value):
    """A guest NIC: its MAC, its logical network, its port identity and how it reaches the host.

    ``vif_type`` picks libvirt's ``<interface type>`` family; see VIF_FORMAT.md for the table of
    what each emits. Instances are immutable and hashable.
    """

    #: The port / VIF id (a UUID). Host device names derive from its first 11 characters.
    id: Uuid
    #: How the guest NIC connects to the host (``<interface type>`` family).
    vif_type: VifType
    #: ``<mac address>``: the guest MAC, unicast, lower-case.
    mac: MacAddress
    #: The logical network.
    network: Network
    #: ``<target dev>``: the host TAP/macvtap name. Default ``tap`` + ``id[:11]``.
    devname: Annotated[str, Strict(), AfterValidator(_target_device), WithJsonSchema(
        {"type": "string", "pattern": r"^(?!vnet|vif|macvtap|macvlan)[A-Za-z0-9_.\-]{1,15}$",
         "not": {"enum": [".", ".."]}}
    )] | None = None
    #: ``<model type>``: the guest NIC model. Default ``virtio`` (never emitted for hostdev).
    model: ModelName | None = None
    #: ``<mtu size>`` and the MTU of every host device plug creates.
    mtu: Mtu | None = None
    #: The switch already filters this port (security groups), so the host need not.
    filtered: Bool = False
    #: Forces the OVS plug method instead of the automatic choice (ovs only).
    plug: PlugMethod | None = None
    #: ``<driver queues>``: multiqueue virtio.
    queues: Queues | None = None
    #: ``<link state>``.
    link_state: Literal["up", "down"] | None = None
    #: ``<bandwidth>``.
    bandwidth: Bandwidth | None = None
    #: ``<filterref>`` (bridge and hybrid only).
    filter: Filter | None = None
    #: OVS port identity (``ovs``; optional for ``vhostuser`` on an OVS bridge).
    ovs: OvsParams | None = None
    #: 802.1Qbg port profile (``802.1qbg``).
    qbg: QbgParams | None = None
    #: 802.1Qbh port profile (``802.1qbh``).
    qbh: QbhParams | None = None
    #: macvtap mode (``802.1qbg``, ``802.1qbh``, ``direct``).
    direct: DirectParams | None = None
    #: vhost-user socket (``vhostuser``).
    vhostuser: VhostUserParams | None = None
    #: SR-IOV VF (``hostdev``).
    hostdev: HostDevParams | None = None

    @model_validator(mode="after")
    def _rules(self) -> Vif:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        kind = self.vif_type
        for loc in _REQUIRED[kind]:
            if self._lookup(loc) is None:
                problems.append((loc, f"required when vif_type is {kind!r}"))
        for loc, kinds in _ALLOWED.items():
            if kind not in kinds and self._given(loc):
                problems.append((loc, f"not used by vif_type {kind!r} (only {_kinds(kinds)})"))
        if problems:  # the rules below assume the shape is right
            raise _RuleError(problems)

        if self.filter is not None and self.plug in ("virtualport", "manual"):
            problems.append((("filter",), "only for the hybrid plug method, not plug "
                             f"{self.plug!r} (drop 'filter' or use plug 'hybrid')"))
        if self.queues is not None and self.nic_model != "virtio":
            problems.append((("queues",), f"needs model 'virtio' (got model {self.nic_model!r})"))
        if kind == "vhostuser" and self.nic_model != "virtio":
            problems.append((("model",), "must be 'virtio' for vif_type 'vhostuser'"))
        if kind in _MACVTAP and self.network.vlan is not None and self.direct_mode != "passthrough":
            problems.append((("network", "vlan"), "needs direct mode 'passthrough' (a macvtap in "
                             f"mode {self.direct_mode!r} cannot tag)"))
        if problems:
            raise _RuleError(problems)
        return self

    def _lookup(self, loc: tuple[str, ...]) -> object:
        value: object = self
        for key in loc:
            value = getattr(value, key, None)
            if value is None:
                return None
        return value

    def _given(self, loc: tuple[str, ...]) -> bool:
        value = self._lookup(loc)
        return value is not None and value is not False

    # --- derived names and defaults (pure; no host access) ---

    @property
    def nic_model(self) -> str:
        """The guest NIC model with its default applied (``virtio``)."""
        return self.model or "virtio"

    @property
    def direct_mode(self) -> DirectMode:
        """The macvtap mode with its default applied (``passthrough`` for 802.1qbh, else vepa)."""
        if self.direct is not None and self.direct.mode is not None:
            return self.direct.mode
        return "passthrough" if self.vif_type == "802.1qbh" else "vepa"

    @property
    def nic_name_suffix(self) -> str:
        """``id[:11]``: the suffix of the tap/qbr/qvb/qvo names nova and os-vif use."""
        return self.id[:NIC_NAME_ID_LEN]

    @property
    def tap_name(self) -> str:
        """The host TAP (``<target dev>``): ``devname``, else ``tap`` + ``id[:11]``."""
        return self.devname or "tap" + self.id[:NIC_NAME_ID_LEN]

    @property
    def qbr_name(self) -> str:
        """The hybrid path's per-VIF Linux bridge."""
        return "qbr" + self.id[:NIC_NAME_ID_LEN]

    @property
    def qvb_name(self) -> str:
        """The hybrid veth end on the qbr."""
        return "qvb" + self.id[:NIC_NAME_ID_LEN]

    @property
    def qvo_name(self) -> str:
        """The hybrid veth end on the OVS bridge."""
        return "qvo" + self.id[:NIC_NAME_ID_LEN]

    # --- construction and serialisation ---

    @classmethod
    def parse(cls, data: object, *, loc: tuple[str | int, ...] = ()) -> Vif:
        """Validate parsed JSON data into a Vif; errors name paths under ``loc``."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise InvalidVifError(_problems(exc, loc, cls)) from None

    def to_dict(self) -> dict[str, Any]:
        """The vif.json object for this VIF (defaults left out)."""
        return self.model_dump(mode="json", exclude_none=True, exclude_defaults=True)

    def to_json(self, **kwargs: Any) -> str:
        """The vif.json text for this VIF."""
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The JSON Schema of vif.json (one VIF object, or a non-empty array of them)."""
        one = cls.model_json_schema(ref_template="#/$defs/{model}")
        defs = one.pop("$defs", {})
        one["allOf"] = [
            {
                "if": {"properties": {"vif_type": {"const": kind}}},
                "then": _required_schema(locs),
            }
            for kind, locs in _REQUIRED.items() if locs
        ]
        defs["Vif"] = one
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://vifplug.org/schemas/vif-1.json",
            "title": "vif.json (format 1)",
            "description": "One VIF object, or a non-empty array of them. See VIF_FORMAT.md.",
            "oneOf": [
                {"$ref": "#/$defs/Vif"},
                {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/Vif"}},
            ],
            "$defs": defs,
        }


def _required_schema(locs: tuple[tuple[str, ...], ...]) -> dict[str, Any]:
    schema: dict[str, Any] = {"required": []}
    for loc in locs:
        node = schema
        for key in loc[:-1]:
            if key not in node["required"]:
                node["required"].append(key)
            node = node.setdefault("properties", {}).setdefault(key, {"required": []})
        node["required"].append(loc[-1])
    return schema


def _kinds(kinds: frozenset[str]) -> str:
    return ", ".join(repr(k) for k in VIF_TYPES if k in kinds)


# --- loading ------------------------------------------------------------------------------------


class _Object(dict[str, Any]):
    """A parsed JSON object that remembers keys given more than once."""

    duplicates: tuple[str, ...] = ()


def _object_pairs(pairs: list[tuple[str, Any]]) -> _Object:
    obj = _Object(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        obj.duplicates = tuple(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
    return obj


def _walk_duplicates(value: object, loc: tuple[str | int, ...]) -> Iterator[tuple[str, str]]:
    if isinstance(value, _Object):
        for key in value.duplicates:
            yield json_path((*loc, key)), "key given more than once (the last would win silently)"
        for key, item in value.items():
            yield from _walk_duplicates(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk_duplicates(item, (*loc, index))


def parse_vif_json(raw: str | bytes, source: str | None = None) -> object:
    """Parse vif.json text (``bytes`` must be UTF-8) into plain data, refusing duplicate keys.

    Errors are :class:`~vifplug.errors.InvalidVifError` at ``$``, naming ``source`` when given.
    """
    try:
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidVifError([("$", f"not UTF-8 text (byte {exc.start})")]) from None
        try:
            data = json.loads(raw, object_pairs_hook=_object_pairs)
        except json.JSONDecodeError as exc:
            raise InvalidVifError(
                [("$", f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")]
            ) from None
        duplicates = list(_walk_duplicates(data, ()))
        if duplicates:
            raise InvalidVifError(duplicates)
    except InvalidVifError as exc:
        raise exc.with_source(source) if source else exc from None
    return data


def load_vifs(src: str | os.PathLike[str] | Mapping[str, Any] | Sequence[Any],
              *, source: str | None = None) -> list[Vif]:
    """Load VIFs from a vif.json path, a JSON text, or parsed data (one object or an array).

    Raises :class:`~vifplug.errors.InvalidVifError` listing every problem with its JSON path
    (and the file name, or ``source`` when given); ``OSError`` when the file cannot be read.
    """
    data: object
    if isinstance(src, os.PathLike):
        source = source or os.fspath(src)
        with open(src, "rb") as handle:
            data = parse_vif_json(handle.read(), source)
    elif isinstance(src, str):
        data = parse_vif_json(src, source)
    else:
        data = src
    return vifs_from_data(data, source=source)


def vifs_from_data(data: object, *, source: str | None = None) -> list[Vif]:
    """VIFs from parsed vif.json data (one object or a non-empty array); errors name ``source``.

    Unlike :func:`load_vifs`, a ``str`` here is a (wrong) JSON value, not a JSON text.
    """
    try:
        return _load_data(data)
    except InvalidVifError as exc:
        raise exc.with_source(source) if source else exc from None


def _load_data(data: object) -> list[Vif]:
    if isinstance(data, Mapping):
        return [Vif.parse(data)]
    if not isinstance(data, list | tuple) or not data:
        raise InvalidVifError([("$", "expected a VIF object or a non-empty array of VIF objects")])
    vifs: list[Vif] = []
    problems: list[tuple[str, str]] = []
    for index, item in enumerate(data):
        try:
            vifs.append(Vif.parse(item, loc=(index,)))
        except InvalidVifError as exc:
            problems.extend(exc.problems)
    if problems:
        raise InvalidVifError(problems)
    problems.extend(_duplicates(vifs))
    if problems:
        raise InvalidVifError(problems)
    return vifs


def _duplicates(vifs: list[Vif]) -> Iterator[tuple[str, str]]:
    """Two VIFs of one file must not share an id, a MAC or a host device name."""
    for key in ("id", "mac", "devname"):
        first: dict[str, int] = {}
        for index, vif in enumerate(vifs):
            item = _unique_value(vif, key)
            if item is None:
                continue
            if item in first:
                what = "host device" if key == "devname" else key
                yield (json_path((index, key)), f"{what} {item!r} is already used by "
                       f"$[{first[item]}] (must be unique in a file)")
            else:
                first[item] = index


def _unique_value(vif: Vif, key: str) -> str | None:
    if key == "devname":  # the host device name, where the VIF has one
        return vif.tap_name if vif.vif_type in _TAP_KINDS or vif.devname else None
    value: str = getattr(vif, key)
    return value


# --- pydantic errors → (JSON path, expectation) -----------------------------------------------


def _problems(
    exc: ValidationError, prefix: tuple[str | int, ...], root: type[BaseModel]
) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        kind = error["type"]
        ctx = error.get("ctx") or {}
        cause = ctx.get("error")
        if isinstance(cause, _RuleError):
            for sub, message in cause.problems:
                problems.append((json_path((*prefix, *loc, *sub)), message))
            continue
        problems.append((json_path((*prefix, *loc)), _message(kind, error, ctx, loc, root)))
    return problems


_TYPE_NAMES = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "bool_type": "true or false", "bool_parsing": "true or false",
    "string_type": "a string", "model_type": "an object", "dict_type": "an object",
    "model_attributes_type": "an object", "list_type": "an array", "tuple_type": "an array",
    "mapping_type": "an object",
}


def _message(kind: str, error: Any, ctx: dict[str, Any], loc: tuple[str | int, ...],
             root: type[BaseModel]) -> str:
    got = f" (got {_short(error.get('input'))})"
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        known = _known_keys(root, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f" (known keys: {', '.join(known)})"
        return "unknown key" + hint
    if kind in _TYPE_NAMES:
        return f"must be {_TYPE_NAMES[kind]}{got}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']}{got}"
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']}{got}"
    if kind == "literal_error":
        return f"must be one of {ctx['expected']}{got}"
    if kind == "value_error":
        return f"{error['msg'].removeprefix('Value error, ')}{got}"
    return f"{error['msg']}{got}"


def _short(value: object) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _known_keys(root: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    model: type[BaseModel] = root
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        inner = _model_in(field.annotation) if field is not None else None
        if inner is None:
            return []
        model = inner
    return list(model.model_fields)


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
