"""The VIF model: what a guest NIC is, validated against vif.json format 1.

One class per ``vif_type`` (as os-vif has one per kind), each declaring only the keys that kind
takes, over the shared base :class:`Vif`; ``vif_type`` picks the class (a discriminated union).
Instances are immutable and hashable. Build them with :func:`vifplug.loading.load_vifs` (a file,
a JSON text or parsed data) or :meth:`Vif.parse`; both raise
:class:`~vifplug.errors.InvalidVifError` naming the JSON path of every broken rule
(``$.network.vlan: must be at most 4094 (got 5000)``).

The rules are those of ``VIF_FORMAT.md``; each field's ``#:`` comment says what it maps to in
libvirt's domain XML or on the host.
"""

from __future__ import annotations

import inspect
import json
import re
import typing
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    Strict,
    TypeAdapter,
    WithJsonSchema,
    model_validator,
)

from vifplug import names, spec
from vifplug.names import check_device_name, check_network_name, check_profile_id

__all__ = [
    "KINDS",
    "VIF_TYPES",
    "Backend",
    "Bandwidth",
    "BridgeNetwork",
    "BridgeVif",
    "Coalesce",
    "DirectParams",
    "DirectVif",
    "EthernetVif",
    "Filter",
    "HostDevParams",
    "HostDevVif",
    "HostSide",
    "HostdevNetwork",
    "MacvtapNetwork",
    "Network",
    "OvsNetwork",
    "OvsParams",
    "OvsVif",
    "QbgParams",
    "QbgVif",
    "QbhParams",
    "QbhVif",
    "Rate",
    "Rom",
    "Teaming",
    "VdpaParams",
    "VdpaVif",
    "VhostUserNetwork",
    "VhostUserParams",
    "VhostUserVif",
    "Vif",
    "VirtioParams",
]

VifType = Literal[
    "bridge", "ovs", "802.1qbg", "802.1qbh", "direct", "ethernet", "vhostuser", "hostdev", "vdpa"
]
VIF_TYPES: tuple[str, ...] = typing.get_args(VifType)
PlugMethod = Literal["hybrid", "virtualport", "manual"]
DirectMode = Literal["vepa", "bridge", "private", "passthrough"]

_UUID = re.compile(spec.UUID_PATTERN)
_MAC = re.compile(spec.MAC_PATTERN)
_PCI = re.compile(r"([0-9a-fA-F]{4}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])")
_MODEL = re.compile(r"[A-Za-z0-9_\-]{1,32}")
_FILTER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,127}")
_FILTER_PARAM = re.compile(r"[A-Za-z0-9_]{1,64}")
_FILTER_VALUE = re.compile(r"[A-Za-z0-9_.:]{1,256}")
_UNIX_PATH_MAX = spec.UNIX_PATH_MAX
#: A vhost-vdpa character device: what the kernel's vhost_vdpa driver creates, one per device.
_VDPA_DEVICE = re.compile(r"/dev/vhost-vdpa-[0-9]{1,9}")
#: A user alias: libvirt keeps only aliases that start with ``ua-`` (formatdomain, "Device
#: aliases"), of its aliasName characters.
_ALIAS = re.compile(r"ua-[A-Za-z0-9_.\-]{1,60}")


Problem = tuple[tuple[str | int, ...], str]


class RuleError(ValueError):
    """Raised inside validators: problems located relative to the value being validated."""

    def __init__(self, problems: Sequence[tuple[tuple[str | int, ...], str]]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(message for _, message in self.problems))


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


def _absolute_path(value: str, limit: int, kind: str, *, dot: bool) -> str:
    """``value`` if it is an absolute path naming a file, at most ``limit`` bytes, without
    control characters nor ``..`` components (nor ``.`` ones, with ``dot``)."""
    if not value.startswith("/"):
        raise ValueError("must be an absolute path")
    if len(value.encode()) > limit:
        raise ValueError(f"must be at most {limit} bytes{kind}")
    if any(ord(c) < 0x20 or c == "\x7f" for c in value):
        raise ValueError("must not contain control characters")
    if "/../" in value + "/" or (dot and "/./" in value + "/") or value.endswith("/"):
        raise ValueError("must name a file, without " + ("'.' or '..'" if dot else "'..'")
                         + " components")
    return value


def _socket_path(value: str) -> str:
    return _absolute_path(value, _UNIX_PATH_MAX, " (a UNIX socket path)", dot=False)


def _file_path(value: str) -> str:
    return _absolute_path(value, spec.PATH_MAX, "", dot=True)


def _queue_size(value: int) -> int:
    if value not in spec.QUEUE_SIZES:
        raise ValueError("must be a power of two from 256 to 1024 (256, 512 or 1024)")
    return value


def _vdpa_device(value: str) -> str:
    if not _VDPA_DEVICE.fullmatch(value):
        raise ValueError("must be a vhost-vdpa device path like /dev/vhost-vdpa-0")
    return value


def _alias(value: str) -> str:
    if not _ALIAS.fullmatch(value):
        raise ValueError("must be a libvirt user alias: 'ua-' then 1 to 60 letters, digits, "
                         "'_', '.' and '-' (like ua-net0)")
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
        raise RuleError(problems)
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


def _anchored(pattern: re.Pattern[str] | str) -> str:
    """A Python ``fullmatch`` pattern as a JSON Schema ``pattern`` (which searches)."""
    return "^" + (pattern if isinstance(pattern, str) else pattern.pattern) + "$"


Str = Annotated[str, Strict()]
Bool = Annotated[bool, Strict()]
Uuid = Annotated[str, Strict(), AfterValidator(_uuid), WithJsonSchema(
    {"type": "string", "format": "uuid", "pattern": _anchored(_UUID)}
)]
DeviceName = Annotated[str, Strict(), AfterValidator(_device), WithJsonSchema(
    {"type": "string", "pattern": names.DEVICE_NAME_PATTERN, "not": {"enum": [".", ".."]}}
)]
TargetName = Annotated[str, Strict(), AfterValidator(_target_device), WithJsonSchema(
    {"type": "string", "pattern": names.TARGET_NAME_PATTERN, "not": {"enum": [".", ".."]}}
)]
Vlan = Annotated[int, Strict(), Field(ge=spec.VLAN_MIN, le=spec.VLAN_MAX)]
UInt8 = Annotated[int, Strict(), Field(ge=0, le=spec.UINT8_MAX)]
UInt24 = Annotated[int, Strict(), Field(ge=0, le=spec.UINT24_MAX)]
Mtu = Annotated[int, Strict(), Field(ge=spec.MTU_MIN, le=spec.MTU_MAX)]
Queues = Annotated[int, Strict(), Field(ge=1, le=spec.QUEUES_MAX)]
Speed = Annotated[int, Strict(), Field(ge=spec.SPEED_MIN, le=spec.SPEED_MAX)]
MacAddress = Annotated[str, Strict(), AfterValidator(_mac), WithJsonSchema(
    # the schema also says unicast: the first octet's low bit clear
    {"type": "string", "pattern": "^[0-9a-fA-F][02468aceACE](:[0-9a-fA-F]{2}){5}$"}
)]
NetworkName = Annotated[str, Strict(), AfterValidator(_network_name), WithJsonSchema(
    {"type": "string", "pattern": names.NETWORK_NAME_PATTERN}
)]
ModelName = Annotated[str, Strict(), AfterValidator(_model_name), WithJsonSchema(
    {"type": "string", "pattern": _anchored(_MODEL)}
)]
FilterName = Annotated[str, Strict(), AfterValidator(_filter_name), WithJsonSchema(
    {"type": "string", "pattern": _anchored(_FILTER_NAME)}
)]
ProfileId = Annotated[str, Strict(), AfterValidator(_profile_id), WithJsonSchema(
    {"type": "string", "pattern": "^[ !#-%(-;=?-~]{1,39}$"}
)]
SocketPath = Annotated[str, Strict(), AfterValidator(_socket_path), WithJsonSchema(
    {"type": "string", "pattern": "^/", "maxLength": _UNIX_PATH_MAX}
)]
FilePath = Annotated[str, Strict(), AfterValidator(_file_path), WithJsonSchema(
    {"type": "string", "pattern": "^/", "maxLength": spec.PATH_MAX}
)]
QueueSize = Annotated[int, Strict(), AfterValidator(_queue_size), WithJsonSchema(
    {"type": "integer", "enum": list(spec.QUEUE_SIZES)}
)]
UInt32 = Annotated[int, Strict(), Field(ge=0, le=spec.UINT32_MAX)]
VdpaDevice = Annotated[str, Strict(), AfterValidator(_vdpa_device), WithJsonSchema(
    {"type": "string", "pattern": _anchored(_VDPA_DEVICE)}
)]
AliasName = Annotated[str, Strict(), AfterValidator(_alias), WithJsonSchema(
    {"type": "string", "pattern": _anchored(_ALIAS)}
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
        "propertyNames": {"pattern": _anchored(_FILTER_PARAM)},
        "additionalProperties": {"type": "string", "pattern": _anchored(_FILTER_VALUE)},
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
            raise RuleError([((), "must give 'inbound' or 'outbound' (or both)")])
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


class VdpaParams(_Value):
    """Maps to ``<source dev>`` of ``type='vdpa'``."""

    #: The vhost-vdpa character device, ``/dev/vhost-vdpa-N``.
    device: VdpaDevice


class Teaming(_Value):
    """Maps to ``<teaming type persistent>``: a virtio NIC and an SR-IOV VF of one MAC that the
    guest's ``net_failover`` driver teams (the VF is unplugged for migration, the virtio NIC
    carries the traffic meanwhile)."""

    #: ``persistent`` on the virtio NIC (always present), ``transient`` on its hostdev partner.
    type: Literal["persistent", "transient"]
    #: The transient VF's partner: the persistent NIC's alias (its ``alias``, else ``ua-`` + its
    #: ``id``). Only with type ``transient``.
    persistent: AliasName | None = None

    @model_validator(mode="after")
    def _partner(self) -> Teaming:
        if self.type == "transient" and self.persistent is None:
            raise RuleError([(("persistent",), "required when type is 'transient' (the alias of "
                              "the persistent virtio NIC)")])
        if self.type == "persistent" and self.persistent is not None:
            raise RuleError([(("persistent",), "only with type 'transient' (the persistent NIC "
                              "names no partner)")])
        return self


# --- the logical network, as each kind sees it ----------------------------------------------------


class _Checked(_Value):
    """A value with rules across its keys: :meth:`rules` yields ``(location, message)`` pairs
    (subclasses extend it), all reported at once."""

    @model_validator(mode="after")
    def _check_rules(self) -> typing.Self:
        problems = list(self.rules())
        if problems:
            raise RuleError(problems)
        return self

    def rules(self) -> Iterator[Problem]:
        """Rules across keys, located relative to this value (none here)."""
        return iter(())


class _Given(_Value):
    """A value of optional keys of which at least one must be given."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    @model_validator(mode="after")
    def _something(self) -> typing.Self:
        if not self.model_fields_set - {key for key, value in self if value is None}:
            keys = "', '".join(type(self).model_fields)
            raise RuleError([((), f"must give at least one of '{keys}'")])
        return self


class VirtioParams(_Given):
    """virtio ring tuning: attributes of ``<driver>`` beside ``queues`` (model virtio only)."""

    #: ``rx_queue_size``: the RX virtqueue size, 256, 512 or 1024 (libvirt 2.3.0).
    rx_queue_size: QueueSize | None = None
    #: ``tx_queue_size``: the TX virtqueue size, 256, 512 or 1024 (libvirt 3.7.0): vhostuser
    #: only (QEMU keeps every other backend's TX ring at 256).
    tx_queue_size: QueueSize | None = None
    #: ``packed='on'``: packed virtqueues (libvirt 6.3.0); false or absent: QEMU's default.
    packed: Bool | None = None


class Coalesce(_Value):
    """Maps to ``<coalesce><rx><frames max/></rx></coalesce>`` (the host TAP's interrupt
    coalescing, set by libvirt with ethtool; libvirt 3.3.0)."""

    #: ``max``: frames received before an interrupt.
    rx_max_frames: UInt32


class Rom(_Checked):
    """Maps to ``<rom>``: the NIC's PCI option ROM (its boot ROM)."""

    #: ``enabled='no'`` when false: no ROM at all (libvirt 4.3.0). Default true.
    enabled: Bool = True
    #: ``file``: the ROM image presented to the guest (an absolute path on the host).
    file: FilePath | None = None
    #: ``bar``: whether the ROM is visible in the guest's memory map (``on`` when true, else
    #: ``off``).
    bar: Bool | None = None

    def rules(self) -> Iterator[Problem]:
        if not self.enabled:
            for key in ("file", "bar"):
                if getattr(self, key) is not None:
                    yield (key,), "cannot be combined with 'enabled': false (no ROM at all)"
        elif self.file is None and self.bar is None:
            yield (), "must give 'enabled': false, or 'file' and/or 'bar'"


class Backend(_Given):
    """Maps to ``<backend tap vhost>``: the device nodes libvirt opens for the NIC's backend
    (libvirt 1.2.9)."""

    #: ``tap``: the TUN/TAP clone device (default ``/dev/net/tun``).
    tap: FilePath | None = None
    #: ``vhost``: the vhost-net device (default ``/dev/vhost-net``).
    vhost: FilePath | None = None


class Network(_Checked):
    """The logical network the NIC joins, and how this host switches it.

    The base of each kind's network (``ethernet``'s is this: nothing but the name).
    """

    #: The logical network name; the migration hook maps it to each host's switch.
    name: NetworkName
    #: The portgroup of the network the NIC joins (``<source portgroup>`` of a libvirt network):
    #: each host's map says what it gives (VLAN, port profile, bandwidth). None: the network's
    #: default portgroup on each host. A host whose network lacks it refuses the guest.
    portgroup: NetworkName | None = None


class BridgeNetwork(Network):
    """A Linux bridge, and optionally the VLAN uplink plug creates for it."""

    #: ``<source bridge>``: the Linux bridge.
    bridge: DeviceName
    #: The parent of ``<interface>.<vlan>`` for create_vlan.
    interface: DeviceName | None = None
    #: The VLAN of the sub-interface create_vlan makes (the bridge itself is VLAN-unaware).
    vlan: Vlan | None = None
    #: Plug creates the Linux bridge if missing.
    create_bridge: Bool = False
    #: Plug creates ``<interface>.<vlan>`` and enslaves it to the bridge.
    create_vlan: Bool = False

    def rules(self) -> Iterator[Problem]:
        yield from super().rules()
        if self.create_vlan and (self.interface is None or self.vlan is None):
            yield ("create_vlan",), "needs 'network.interface' and 'network.vlan'"
        elif self.create_vlan:
            try:
                check_device_name(self.vlan_device or "")
            except ValueError as exc:
                yield (("create_vlan",), f"the VLAN device {self.vlan_device} {exc}; use a "
                       "shorter 'network.interface'")

    @property
    def vlan_device(self) -> str | None:
        """``<interface>.<vlan>``, the VLAN device create_vlan makes."""
        if self.interface is None or self.vlan is None:
            return None
        return f"{self.interface}.{self.vlan}"


class OvsNetwork(Network):
    """An OVS (integration) bridge, with an access VLAN or a trunk."""

    #: ``<source bridge>``: the OVS bridge.
    bridge: DeviceName
    #: Access VLAN: ``<vlan><tag>``, the OVS port's ``tag``.
    vlan: Vlan | None = None
    #: OVS trunk: ``<vlan trunk='yes'>`` with one ``<tag>`` each, the port's ``trunks``.
    trunk: Annotated[
        tuple[Vlan, ...], AfterValidator(_non_empty), Field(json_schema_extra={"minItems": 1})
    ] | None = None

    def rules(self) -> Iterator[Problem]:
        yield from super().rules()
        if self.vlan is not None and self.trunk is not None:
            yield ("trunk",), "cannot be combined with 'vlan' (give one of them)"
        if self.trunk is not None and len(set(self.trunk)) != len(self.trunk):
            yield ("trunk",), "must not repeat a VLAN"


class MacvtapNetwork(Network):
    """The host NIC a macvtap sits on."""

    #: ``<source dev>``: the macvtap's lower device.
    interface: DeviceName
    #: ``<vlan><tag>`` (passthrough mode only).
    vlan: Vlan | None = None


class VhostUserNetwork(Network):
    """The OVS-DPDK bridge on the other end of the socket, if vifplug plugs that port."""

    #: The OVS-DPDK bridge of the vhost-user port.
    bridge: DeviceName | None = None


class HostdevNetwork(Network):
    """The VLAN the VF tags with."""

    #: ``<vlan><tag>``: programmed into the VF.
    vlan: Vlan | None = None


# --- the VIF: a shared base and one class per kind ------------------------------------------------


class HostSide(typing.NamedTuple):
    """Where a host connects an ``<interface>`` (what this host's network map chose for it: the
    migration hook's rewrite): ``type``, ``<source>`` attributes, ``<virtualport type>``, the
    access ``<vlan>`` tag or trunk tags."""

    type: str
    source: Mapping[str, str]
    virtualport: str | None = None
    vlan: int | None = None
    trunk: tuple[int, ...] | None = None


class Vif(_Checked):
    """A guest NIC: its MAC, its logical network, its port identity and how it reaches the host.

    The base of the kinds below; ``vif_type`` picks libvirt's ``<interface type>`` family (see
    VIF_FORMAT.md for the table of what each emits). Build one with :meth:`parse`.
    """

    #: The port / VIF id (a UUID). Host device names derive from its first 11 characters.
    id: Uuid
    #: How the guest NIC connects to the host (``<interface type>`` family).
    vif_type: VifType
    #: ``<mac address>``: the guest MAC, unicast, lower-case.
    mac: MacAddress
    #: The logical network.
    network: Network
    #: The switch already filters this port (security groups), so the host need not.
    filtered: Bool = False
    #: ``<rom>``: the NIC's PCI option ROM.
    rom: Rom | None = None
    #: ``<alias name>``: a libvirt user alias (``ua-…``). Default: none, or ``ua-`` + ``id``
    #: for a VIF in a ``teaming`` pair.
    alias: AliasName | None = None

    #: A missing key reported at the key inside it that the format names (the port identity).
    missing_reported_at: ClassVar[Mapping[str, tuple[str, ...]]] = {}

    @model_validator(mode="before")
    @classmethod
    def _unset_keys_of_other_kinds(cls, data: Any) -> Any:
        """A key only other kinds use, given as ``null`` or ``false``, says nothing: accept and
        drop it (as format 1 always has); given a value, it is refused as not used."""
        if not isinstance(data, Mapping):
            return data
        others, network_others = _keys_of_other_kinds(cls)
        network = data.get("network")
        unset = [key for key in others.intersection(data)
                 if data[key] is None or data[key] is False]
        unset_network = [] if not isinstance(network, Mapping) else [
            key for key in network_others.intersection(network)
            if network[key] is None or network[key] is False]
        if not unset and not unset_network:
            return data
        cleaned = {key: value for key, value in data.items() if key not in unset}
        if unset_network and isinstance(network, Mapping):
            cleaned["network"] = {key: value for key, value in network.items()
                                  if key not in unset_network}
        return cleaned

    @model_validator(mode="after")
    def _a_kind(self) -> Vif:
        if type(self) is Vif:
            raise TypeError("Vif is the base of the VIF kinds: use Vif.parse(data) or a kind's "
                            "class (OvsVif, BridgeVif, ...)")
        return self

    # --- construction and serialisation ---

    @classmethod
    def parse(cls, data: object, *, loc: tuple[str | int, ...] = ()) -> Vif:
        """Validate parsed JSON data into the Vif of its kind; errors name paths under ``loc``.

        On a kind's class (``OvsVif.parse``), the data must be of that kind.
        """
        from vifplug.loading import parse_vif

        return parse_vif(data, loc=loc, kind=None if cls is Vif else cls)

    def to_dict(self) -> dict[str, Any]:
        """The vif.json object for this VIF (defaults left out)."""
        return self.model_dump(mode="json", exclude_none=True, exclude_defaults=True)

    def to_json(self, **kwargs: Any) -> str:
        """The vif.json text for this VIF."""
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The JSON Schema of vif.json (one VIF object, or a non-empty array of them)."""
        return _json_schema()

    # --- what every kind answers (the derived names live in vifplug.names) ---

    @property
    def teaming_of(self) -> Teaming | None:
        """The failover ``teaming`` of the kinds that take it, else None."""
        teaming = self.__dict__.get("teaming")  # a field of the kinds that take it
        return teaming if isinstance(teaming, Teaming) else None

    @property
    def device_alias(self) -> str | None:
        """The ``<alias name>``: ``alias``, else ``ua-`` + ``id`` when the VIF is in a teaming
        pair (its partner names it), else None."""
        if self.alias is not None:
            return self.alias
        return f"ua-{self.id}" if self.teaming_of is not None else None

    @property
    def host_device(self) -> str | None:
        """The host net device this VIF names (``<target dev>``), if it has one: unique in a
        file. ``None`` for kinds whose host device libvirt names (macvtap without devname)."""
        return None

    def metadata(self) -> dict[str, str]:
        """The per-guest identity the migration hook must carry across hosts whose switch does
        not keep it (HOOK_CONTRACT.md), beside the MAC and network: none by default."""
        return {}

    def requests(self) -> dict[str, str]:
        """What the guest itself asks of each host (the merge rule's interface layer,
        :mod:`vifplug.merge`), as metadata attributes: its ``portgroup``, and ``ask-vlan`` /
        ``ask-trunk``, ``ask-managerid`` / ``ask-typeid`` / ``ask-typeidversion``,
        ``ask-profileid``, ``ask-bandwidth``, ``ask-trust`` for the kinds that take them."""
        portgroup = self.network.portgroup
        return {} if portgroup is None else {"portgroup": portgroup}

    def _asks(self, **given: Any) -> dict[str, str]:
        from vifplug import merge

        return {**Vif.requests(self), **merge.requests(**given)}

    def hosted(self, side: HostSide) -> dict[str, Any] | None:
        """This VIF's vif.json data with the host devices of ``side`` (``plug --networks``: the
        host side the map chose), or None when a VIF of this kind cannot make that host side.
        Default: None (the kinds the map does not switch)."""
        return None

    def _on(self, network: dict[str, Any], **top: Any) -> dict[str, Any]:
        """:meth:`hosted`'s data: this VIF's, its network replaced (name and portgroup kept)."""
        data = {**self.to_dict(), **top,
                "network": {"name": self.network.name, **network,
                            "portgroup": self.network.portgroup}}
        data["network"] = {key: value for key, value in data["network"].items()
                           if value is not None}
        return {key: value for key, value in data.items() if value is not None}


class GuestNic(Vif):
    """A NIC QEMU emulates (virtio unless told otherwise): every kind but hostdev."""

    #: ``<target dev>``: the host TAP/macvtap name (vhostuser: the OVS port's name).
    devname: TargetName | None = None
    #: ``<model type>``: the guest NIC model. Default ``virtio``.
    model: ModelName | None = None
    #: ``<mtu size>`` and the MTU of every host device plug creates.
    mtu: Mtu | None = None
    #: ``<driver queues>``: multiqueue virtio.
    queues: Queues | None = None
    #: ``<link state>``.
    link_state: Literal["up", "down"] | None = None
    #: ``<driver rx_queue_size tx_queue_size packed>``: virtio ring tuning.
    virtio: VirtioParams | None = None
    #: ``<teaming type='persistent'/>``: the virtio half of a failover pair (libvirt 6.1.0).
    teaming: Teaming | None = None

    def rules(self) -> Iterator[Problem]:
        yield from super().rules()
        for key in ("queues", "virtio"):
            if getattr(self, key) is not None and self.nic_model != "virtio":
                yield (key,), f"needs model 'virtio' (got model {self.nic_model!r})"
        if self.virtio is not None and self.virtio.tx_queue_size is not None \
                and self.vif_type != "vhostuser":
            yield (("virtio", "tx_queue_size"), "only for vif_type 'vhostuser' (QEMU keeps the "
                   f"TX ring of every other backend at 256; got vif_type {self.vif_type!r})")
        if self.teaming is not None and self.teaming.type != "persistent":
            yield (("teaming", "type"), f"must be 'persistent' for vif_type {self.vif_type!r} "
                   "(the transient half of a failover pair is a 'hostdev' VF)")
        elif self.teaming is not None and self.nic_model != "virtio":
            yield (("teaming",), "needs model 'virtio' (QEMU's failover is a virtio-net "
                   f"feature; got model {self.nic_model!r})")

    @property
    def nic_model(self) -> str:
        """The guest NIC model with its default applied (``virtio``)."""
        return self.model or "virtio"

    @property
    def multi_queue(self) -> bool:
        """More than one queue pair: a TAP made for it needs IFF_MULTI_QUEUE."""
        return (self.queues or 1) > 1

    @property
    def host_device(self) -> str | None:
        return self.devname


class ShapedNic(GuestNic):
    """A NIC whose host side is a kernel net device, so libvirt can shape it (``<bandwidth>``)."""

    #: ``<bandwidth>``.
    bandwidth: Bandwidth | None = None

    def requests(self) -> dict[str, str]:
        return {**super().requests(), **self._asks(bandwidth=self.shaping)}

    @property
    def shaping(self) -> Any:
        """:attr:`bandwidth` as the network map and the merge rule hold it
        (:class:`vifplug.netmap.Bandwidth`), or None."""
        if self.bandwidth is None:
            return None
        from vifplug import netmap

        def rate(given: Rate | None) -> netmap.Rate | None:
            return None if given is None else netmap.Rate(given.average, given.peak, given.burst)

        return netmap.Bandwidth(rate(self.bandwidth.inbound), rate(self.bandwidth.outbound))


class TapVif(ShapedNic):
    """A NIC whose host side is a TAP named ``devname``, else ``tap`` + ``id[:11]``."""

    #: ``<backend tap vhost>``: the device nodes libvirt opens for the TAP and vhost-net.
    backend: Backend | None = None

    @property
    def tap_name(self) -> str:
        """The host TAP (``<target dev>``): ``devname``, else ``tap`` + ``id[:11]``."""
        return self.devname or names.tap_name(self.id)

    @property
    def host_device(self) -> str | None:
        return self.tap_name


class BridgeVif(TapVif):
    """Maps to ``type='bridge'`` on a Linux bridge."""

    vif_type: Literal["bridge"]
    network: BridgeNetwork
    #: ``<filterref>`` when the host firewalls.
    filter: Filter | None = None
    #: ``<coalesce>``: the TAP's RX interrupt coalescing.
    coalesce: Coalesce | None = None
    #: ``<port isolated='yes'/>`` (libvirt 6.1.0): the TAP's bridge port is isolated, so the
    #: guest reaches the bridge's other (non-isolated) ports, its uplink, but no other isolated
    #: guest.
    isolated: Bool = False

    def hosted(self, side: HostSide) -> dict[str, Any] | None:
        if side.type != "bridge" or side.virtualport is not None:
            return None
        return self._on({"bridge": side.source.get("bridge", "")})


class OvsVif(TapVif):
    """Maps to ``type='bridge'`` + ``<virtualport type='openvswitch'>``, the hybrid path's
    ``type='bridge'`` on ``qbr…``, or ``type='ethernet'`` on a TAP vifplug adds (see ``plug``)."""

    vif_type: Literal["ovs"]
    network: OvsNetwork
    #: The OVS port identity.
    ovs: OvsParams
    #: Forces the OVS plug method instead of the automatic choice.
    plug: PlugMethod | None = None
    #: ``<filterref>`` (the hybrid path only).
    filter: Filter | None = None
    #: ``<coalesce>``: the TAP's RX interrupt coalescing (``type='bridge'`` only: not with plug
    #: ``manual``, whose ``type='ethernet'`` libvirt refuses it on).
    coalesce: Coalesce | None = None

    missing_reported_at: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "ovs": ("ovs", "interface_id")}

    def rules(self) -> Iterator[Problem]:
        yield from super().rules()
        if self.filter is not None and self.plug in ("virtualport", "manual"):
            yield (("filter",), "only for the hybrid plug method, not plug "
                   f"{self.plug!r} (drop 'filter' or use plug 'hybrid')")
        if self.coalesce is not None and self.plug == "manual":
            yield (("coalesce",), "not with plug 'manual': libvirt refuses <coalesce> on its "
                   "type='ethernet' (use plug 'virtualport' or 'hybrid')")

    @property
    def qbr_name(self) -> str:
        """The hybrid path's per-VIF Linux bridge."""
        return names.qbr_name(self.id)

    @property
    def qvb_name(self) -> str:
        """The hybrid veth end on the qbr."""
        return names.qvb_name(self.id)

    @property
    def qvo_name(self) -> str:
        """The hybrid veth end on the OVS bridge."""
        return names.qvo_name(self.id)

    def metadata(self) -> dict[str, str]:
        return {"interfaceid": self.ovs.interface_id}

    def requests(self) -> dict[str, str]:
        return {**super().requests(),
                **self._asks(vlan=self.network.vlan, trunk=self.network.trunk)}

    def hosted(self, side: HostSide) -> dict[str, Any] | None:
        # the map's OVS bridge and VLAN, by virtualport (as the rewritten interface is): no
        # hybrid qbr, so no filter
        if side.type != "bridge" or side.virtualport != "openvswitch":
            return None
        return self._on({"bridge": side.source.get("bridge", ""), "vlan": side.vlan,
                         "trunk": None if side.trunk is None else list(side.trunk)},
                        plug="virtualport", filter=None)


class EthernetVif(TapVif):
    """Maps to ``type='ethernet'``: a TAP the host connects by other means."""

    vif_type: Literal["ethernet"]
    network: Network


class MacvtapVif(ShapedNic):
    """Maps to ``type='direct'``: a macvtap on ``network.interface``."""

    network: MacvtapNetwork
    #: The macvtap mode.
    direct: DirectParams | None = None
    #: ``<interface trustGuestRxFilters>`` (``yes``/``no``): whether the guest's MAC and RX
    #: filter changes are applied on the host (a macvtap's, a VF's). The interface layer of the
    #: merge rule (``ask-trust``).
    trust_guest_rx_filters: Bool | None = None

    #: The mode when ``direct.mode`` is not given.
    default_mode: ClassVar[DirectMode] = "vepa"

    def rules(self) -> Iterator[Problem]:
        yield from super().rules()
        if self.network.vlan is not None and self.direct_mode != "passthrough":
            yield (("network", "vlan"), "needs direct mode 'passthrough' (a macvtap in mode "
                   f"{self.direct_mode!r} cannot tag)")

    def requests(self) -> dict[str, str]:
        return {**super().requests(),
                **self._asks(vlan=self.network.vlan, trust=self.trust_guest_rx_filters)}

    def hosted(self, side: HostSide) -> dict[str, Any] | None:
        if side.type != "direct":
            return None
        return self._on({"interface": side.source.get("dev", "")})

    @property
    def direct_mode(self) -> DirectMode:
        """The macvtap mode with its default applied."""
        if self.direct is not None and self.direct.mode is not None:
            return self.direct.mode
        return self.default_mode


class DirectVif(MacvtapVif):
    """A macvtap in ``vepa`` (default), ``bridge``, ``private`` or ``passthrough`` mode."""

    vif_type: Literal["direct"]


class QbgVif(MacvtapVif):
    """A macvtap with ``<virtualport type='802.1Qbg'>`` (VEPA with VDP)."""

    vif_type: Literal["802.1qbg"]
    #: The 802.1Qbg port profile.
    qbg: QbgParams

    def metadata(self) -> dict[str, str]:
        qbg = self.qbg
        return {"managerid": str(qbg.manager_id), "typeid": str(qbg.type_id),
                "typeidversion": str(qbg.type_id_version), "instanceid": qbg.instance_id}

    def requests(self) -> dict[str, str]:
        from vifplug.netmap import QbgShared

        qbg = QbgShared(self.qbg.manager_id, self.qbg.type_id, self.qbg.type_id_version)
        return {**super().requests(), **self._asks(qbg=qbg)}


class QbhVif(MacvtapVif):
    """A macvtap with ``<virtualport type='802.1Qbh'>`` (VN-Link); passthrough by default."""

    vif_type: Literal["802.1qbh"]
    #: The 802.1Qbh port profile.
    qbh: QbhParams

    default_mode: ClassVar[DirectMode] = "passthrough"

    def metadata(self) -> dict[str, str]:
        return {"profileid": self.qbh.profile_id}

    def requests(self) -> dict[str, str]:
        return {**super().requests(), **self._asks(profile_id=self.qbh.profile_id)}


class VhostUserVif(GuestNic):
    """Maps to ``type='vhostuser'``: virtio rings shared with a userspace switch (OVS-DPDK)."""

    vif_type: Literal["vhostuser"]
    network: VhostUserNetwork
    #: The vhost-user socket.
    vhostuser: VhostUserParams
    #: The OVS port identity, when vifplug plugs the OVS-DPDK port.
    ovs: OvsParams | None = None

    def rules(self) -> Iterator[Problem]:
        yield from super().rules()
        if self.nic_model != "virtio":
            yield ("model",), "must be 'virtio' for vif_type 'vhostuser'"

    @property
    def port_name(self) -> str:
        """The OVS port: ``devname`` (os-vif's ``vif_name``), else ``vhu`` + ``id[:11]``."""
        return self.devname or names.vhu_name(self.id)

    def metadata(self) -> dict[str, str]:
        return {} if self.ovs is None else {"interfaceid": self.ovs.interface_id}


class HostDevVif(Vif):
    """Maps to ``type='hostdev'``: an SR-IOV VF the guest drives itself (no model, MTU, QoS)."""

    vif_type: Literal["hostdev"]
    network: HostdevNetwork
    #: The SR-IOV VF.
    hostdev: HostDevParams
    #: ``<interface trustGuestRxFilters>`` (``yes``/``no``): whether the guest's MAC and RX
    #: filter changes are applied on the host (a macvtap's, a VF's). The interface layer of the
    #: merge rule (``ask-trust``).
    trust_guest_rx_filters: Bool | None = None

    #: ``<teaming type='transient' persistent>``: the VF half of a failover pair (libvirt
    #: 6.1.0), naming its virtio partner's alias.
    teaming: Teaming | None = None

    def rules(self) -> Iterator[Problem]:
        yield from super().rules()
        if self.teaming is not None and self.teaming.type != "transient":
            yield (("teaming", "type"), "must be 'transient' for vif_type 'hostdev' (the "
                   "persistent half of a failover pair is a virtio NIC)")

    def requests(self) -> dict[str, str]:
        return {**super().requests(),
                **self._asks(vlan=self.network.vlan, trust=self.trust_guest_rx_filters)}


class VdpaVif(GuestNic):
    """Maps to ``type='vdpa'``: a virtio device whose data path a vDPA device (an offloading NIC's
    VF, typically a hardware-offloaded OVS port) implements; QEMU opens ``/dev/vhost-vdpa-N``."""

    vif_type: Literal["vdpa"]
    network: Network
    #: The vhost-vdpa device.
    vdpa: VdpaParams

    def rules(self) -> Iterator[Problem]:
        yield from super().rules()
        if self.nic_model != "virtio":
            yield ("model",), "must be 'virtio' for vif_type 'vdpa'"
        for key, why in (("devname", "a vDPA NIC has no host net device (no TAP)"),
                         ("mtu", "the vDPA device's MTU is set where it is made (vdpa dev add "
                          "... mtu)"),
                         ("queues", "the vDPA device's queue pairs are set where it is made "
                          "(vdpa dev add ... max_vqp)"),
                         ("teaming", "a failover pair's persistent half must be migratable, "
                          "and a vDPA NIC is not")):
            if getattr(self, key) is not None:
                yield (key,), f"not used by vif_type 'vdpa': {why}"


#: Every kind, in VIF_FORMAT.md's order.
KINDS: dict[str, type[Vif]] = {
    "bridge": BridgeVif, "ovs": OvsVif, "802.1qbg": QbgVif, "802.1qbh": QbhVif,
    "direct": DirectVif, "ethernet": EthernetVif, "vhostuser": VhostUserVif,
    "hostdev": HostDevVif, "vdpa": VdpaVif,
}
assert tuple(KINDS) == VIF_TYPES  # noqa: S101 - one order everywhere

AnyVif = Annotated[
    Union[BridgeVif, OvsVif, QbgVif, QbhVif, DirectVif,  # noqa: UP007 - a discriminated union
          EthernetVif, VhostUserVif, HostDevVif, VdpaVif],
    Field(discriminator="vif_type"),
]


def _network_class(kind: type[Vif]) -> type[Network]:
    annotation = kind.model_fields["network"].annotation
    if not (isinstance(annotation, type) and issubclass(annotation, Network)):
        raise TypeError(f"{kind.__name__}.network must be a Network class")
    return annotation


_ANY_KIND_KEYS = frozenset(key for kind in KINDS.values() for key in kind.model_fields)
_ANY_NETWORK_KEYS = frozenset(key for kind in KINDS.values()
                              for key in _network_class(kind).model_fields)


@cache
def _keys_of_other_kinds(kind: type[Vif]) -> tuple[frozenset[str], frozenset[str]]:
    """The keys (top level, and of ``network``) that other kinds take and ``kind`` does not."""
    return (_ANY_KIND_KEYS - set(kind.model_fields),
            _ANY_NETWORK_KEYS - set(_network_class(kind).model_fields))


@cache
def vif_adapter() -> TypeAdapter[Vif]:
    """The validator of the discriminated union (built on first use: pydantic is slow to)."""
    adapter: TypeAdapter[Vif] = TypeAdapter(AnyVif)
    return adapter


def _fields_at(kind: type[Vif], parents: Sequence[str | int]) -> Mapping[str, Any] | None:
    if not parents:
        return kind.model_fields
    if list(parents) == ["network"]:
        return _network_class(kind).model_fields
    return None


def kinds_taking(loc: Sequence[str | int]) -> tuple[str, ...]:
    """The vif_types whose VIF (or network) has a key at ``loc`` (``("network", "trunk")``)."""
    *parents, key = loc
    return tuple(vif_type for vif_type, kind in KINDS.items()
                 if key in (_fields_at(kind, parents) or ()))


def kinds_requiring(loc: Sequence[str | int]) -> tuple[str, ...]:
    """The vif_types that require the key at ``loc`` (a top-level or a network key)."""
    *parents, key = loc
    found = []
    for vif_type, kind in KINDS.items():
        field = (_fields_at(kind, parents) or {}).get(str(key))
        if field is not None and field.is_required():
            found.append(vif_type)
    return tuple(found)


# --- the JSON Schema: format 1's one object shape, with the per-kind rules in ``allOf`` ---------


def _json_schema() -> dict[str, Any]:
    """vif.json's JSON Schema as format 1 has always published it: one ``Vif`` object holding
    every kind's keys, ``network`` likewise, and per vif_type the keys it requires (``allOf``
    if/then). Derived from the kind classes, so it cannot drift from them."""
    defs: dict[str, Any] = {}
    merged: dict[str, dict[str, Any]] = {"Vif": {}, "Network": {}}
    required: dict[str, set[str]] = {"Vif": set(), "Network": set()}
    conditional: list[dict[str, Any]] = []
    # what the shared bases require, every kind does: required without a condition
    always = {key for cls in (Vif, Network) for key, field in cls.model_fields.items()
              if field.is_required()}
    for index, (vif_type, kind) in enumerate(KINDS.items()):
        schema = kind.model_json_schema(ref_template="#/$defs/{model}")
        kind_defs = schema.pop("$defs", {})
        network_schema = kind_defs.pop(_network_class(kind).__name__)
        defs.update(kind_defs)
        schema["properties"]["network"] = {"$ref": "#/$defs/Network"}
        locs: list[tuple[str, ...]] = []
        for name, found in (("Network", network_schema), ("Vif", schema)):
            own = set(found.get("required", []))
            required[name] = own if index == 0 else required[name] & own
            for key, prop in found["properties"].items():
                if key in own and key not in always:
                    locs.append(("network", key) if name == "Network"
                                else kind.missing_reported_at.get(key, (key,)))
                    inner = {k: v for k, v in prop.items() if k != "title"}
                    prop = {"anyOf": [inner, {"type": "null"}], "default": None,  # noqa: PLW2901
                            **({"title": prop["title"]} if "title" in prop else {})}
                if key == "vif_type":
                    prop = {"enum": list(VIF_TYPES), "title": "Vif Type", "type": "string"}  # noqa: PLW2901
                known = merged[name].get(key)
                if known is None or ("default" in prop and "default" not in known):
                    merged[name][key] = prop
        if locs:
            conditional.append({"if": {"properties": {"vif_type": {"const": vif_type}}},
                                "then": _required_schema(locs)})
    for name, cls in (("Network", Network), ("Vif", Vif)):
        defs[name] = {
            "additionalProperties": False,
            "description": inspect.cleandoc(cls.__doc__ or ""),
            "properties": _ordered(merged[name], cls),
            "required": [key for key in _ordered(merged[name], cls) if key in required[name]],
            "title": name,
            "type": "object",
        }
    defs["Vif"]["allOf"] = conditional
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://vifplug.org/schemas/vif-1.json",
        "title": "vif.json (format 1)",
        "description": "One VIF object, or a non-empty array of them. See VIF_FORMAT.md.",
        "oneOf": [
            {"$ref": "#/$defs/Vif"},
            {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/Vif"}},
        ],
        "$defs": dict(sorted(defs.items())),
    }


#: The order keys are listed in (the reference tables follow it).
_VIF_ORDER = ("id", "vif_type", "mac", "network", "devname", "model", "mtu", "filtered", "plug",
              "queues", "virtio", "link_state", "bandwidth", "coalesce", "backend", "rom",
              "trust_guest_rx_filters", "filter", "isolated", "alias", "teaming", "ovs", "qbg",
              "qbh", "direct", "vhostuser", "hostdev", "vdpa")
_NETWORK_ORDER = ("name", "portgroup", "bridge", "interface", "vlan", "trunk", "create_bridge",
                  "create_vlan")


def _ordered(properties: dict[str, Any], cls: type[BaseModel]) -> dict[str, Any]:
    order = _VIF_ORDER if cls is Vif else _NETWORK_ORDER
    assert set(properties) <= set(order), set(properties) - set(order)  # noqa: S101
    return {key: properties[key] for key in order if key in properties}


def _required_schema(locs: Sequence[tuple[str, ...]]) -> dict[str, Any]:
    schema: dict[str, Any] = {"required": []}
    for loc in locs:
        node = schema
        for key in loc[:-1]:
            if key not in node["required"]:
                node["required"].append(key)
            node = node.setdefault("properties", {}).setdefault(key, {"required": []})
        node["required"].append(loc[-1])
    return schema
