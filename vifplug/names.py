"""Names of host things: net devices and logical networks. Pure and light (no pydantic): the
migration hook and the network map use these too.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable

__all__ = [
    "DEVICE_NAME_PATTERN",
    "IFNAMSIZ",
    "NETWORK_NAME_PATTERN",
    "NIC_NAME_ID_LEN",
    "RESERVED_PREFIXES",
    "TARGET_NAME_PATTERN",
    "check_device_name",
    "check_network_name",
    "check_profile_id",
    "linux_bridge_name",
    "qbr_name",
    "qvb_name",
    "qvo_name",
    "tap_name",
    "uplink_bridge_name",
    "vhu_name",
    "vlan_device_name",
]

#: Linux's IFNAMSIZ is 16 bytes including the terminating NUL.
IFNAMSIZ = 16
#: Target device prefixes libvirt treats as its own: a name starting with one is replaced by a
#: generated one (vnet0, macvtap0, ...), so the host side would not find the device it expects.
RESERVED_PREFIXES = ("vnet", "vif", "macvtap", "macvlan")
#: Characters allowed in the name of a device vifplug creates or names (a subset of what the
#: kernel allows, so names are safe in argv, OVSDB and XML without quoting).
_DEVICE_CHAR = r"[A-Za-z0-9_.\-]"
_DEVICE_CHARS = re.compile(_DEVICE_CHAR + "+")
_NETWORK_NAME = re.compile(_DEVICE_CHAR + "{1,64}")
#: What the JSON Schema says of a device name (the byte limit and '.'/'..' are checked in code).
DEVICE_NAME_PATTERN = f"^{_DEVICE_CHAR}{{1,{IFNAMSIZ - 1}}}$"
#: ... of a ``<target dev>`` name: also not one of libvirt's reserved prefixes.
TARGET_NAME_PATTERN = (f"^(?!{'|'.join(RESERVED_PREFIXES)}){_DEVICE_CHAR}{{1,{IFNAMSIZ - 1}}}$")
#: ... of a logical network name.
NETWORK_NAME_PATTERN = f"^{_NETWORK_NAME.pattern}$"

#: Length of the id prefix in tap/qbr/qvb/qvo/vhu names (nova, os-vif and neutron agents agree
#: on 11: with a 3-letter prefix the name fits IFNAMSIZ with room to spare).
NIC_NAME_ID_LEN = 11


def check_device_name(name: str, *, reserved: bool = False) -> str:
    """Check a Linux network device name vifplug may create or use; return it unchanged.

    At most 15 bytes (IFNAMSIZ - 1), only ``[A-Za-z0-9_.-]``, not ``.`` or ``..``; with
    ``reserved``, also not starting with a prefix libvirt reserves for its own devices.
    """
    if not isinstance(name, str):
        raise TypeError("must be a string")
    if not name:
        raise ValueError("must be a device name of 1 to 15 characters, not empty")
    if not _DEVICE_CHARS.fullmatch(name):
        raise ValueError("must be a device name of only letters, digits, '_', '.' and '-'")
    if len(name.encode()) >= IFNAMSIZ:
        raise ValueError(f"must be a device name of at most {IFNAMSIZ - 1} bytes (IFNAMSIZ)")
    if name in (".", ".."):
        raise ValueError("must be a device name, not '.' or '..'")
    if reserved and name.startswith(RESERVED_PREFIXES):
        prefixes = ", ".join(repr(p) for p in RESERVED_PREFIXES)
        raise ValueError(f"must not start with a prefix libvirt reserves ({prefixes})")
    return name


def check_network_name(name: str) -> str:
    """A logical network name: 1 to 64 of ``[A-Za-z0-9_.-]``; return it unchanged."""
    if not isinstance(name, str) or not _NETWORK_NAME.fullmatch(name):
        raise ValueError("must be 1 to 64 characters of letters, digits, '_', '.' and '-'")
    return name


#: libvirt writes ``profileid`` back without escaping it: a profile holding one of these breaks
#: every later parse of the domain (found by tests/unit/test_generated.py on libvirt 9.0).
_XML_SPECIAL = frozenset("<>&'\"")


def check_profile_id(value: str) -> str:
    """An 802.1Qbh port profile name; return it unchanged."""
    if (not 1 <= len(value) <= 39 or not value.isascii() or not value.isprintable()
            or _XML_SPECIAL.intersection(value)):
        raise ValueError("must be 1 to 39 printable ASCII characters without < > & ' \" "
                         "(an 802.1Qbh port profile)")
    return value


# --- the names vifplug (and nova, os-vif, the Neutron agents) derive from a port id -------------


def _prefixed(prefix: str, what: str) -> Callable[[str], str]:
    def name(port_id: str) -> str:
        return prefix + port_id[:NIC_NAME_ID_LEN]

    name.__doc__ = f"{what}: ``{prefix}`` + ``id[:11]``."
    return name


tap_name = _prefixed("tap", "The guest's TAP")
qbr_name = _prefixed("qbr", "The hybrid path's per-VIF Linux bridge")
qvb_name = _prefixed("qvb", "The hybrid veth end on the qbr")
qvo_name = _prefixed("qvo", "The hybrid veth end on the OVS bridge")
vhu_name = _prefixed("vhu", "A vhost-user OVS port, as os-vif names it")
#: The Neutron Linux bridge agent's bridge for a network, from the *network* id.
linux_bridge_name = _prefixed("brq", "The Neutron Linux bridge agent's bridge for a network")


# --- the names vifplug derives for the host's networks (networks.toml) ---------------------------


def _short_hash(text: str) -> str:
    """4 hex digits of the CRC-32 of ``text``: stable across runs, Python versions and hosts."""
    return f"{zlib.crc32(text.encode()) & 0xFFFF:04x}"


def uplink_bridge_name(uplink: str) -> str:
    """The OVS bridge vifplug makes for an uplink (NIC or bond) when the map names none:
    ``br-<uplink>`` (``br-eth1``, ``br-bond0``: the convention of Neutron's bridge mappings);
    when that passes IFNAMSIZ, ``br-`` + the uplink's first 7 characters + ``-`` + 4 hex digits
    of a CRC-32 of the whole uplink name (``br-enp129s-1a2b``)."""
    name = "br-" + uplink
    if len(name.encode()) < IFNAMSIZ:
        return name
    return f"br-{uplink[:7]}-{_short_hash(uplink)}"


def vlan_device_name(uplink: str, vlan: int) -> str:
    """The 802.1Q device a Linux bridge network's VLAN gets on its uplink: ``<uplink>.<vlan>``
    (``eth1.100``, as iproute2 and oVirt name it); when that passes IFNAMSIZ, the uplink's first
    characters + ``-`` + 4 hex digits of a CRC-32 of the uplink name + ``.<vlan>``
    (``enp12-1a2b.4000``)."""
    suffix = f".{vlan}"
    name = uplink + suffix
    if len(name.encode()) < IFNAMSIZ:
        return name
    keep = IFNAMSIZ - 1 - len(suffix) - 5
    return f"{uplink[:keep]}-{_short_hash(uplink)}{suffix}"
