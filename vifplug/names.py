"""Names of host things: net devices and logical networks. Pure and light (no pydantic): the
migration hook and the network map use these too.
"""

from __future__ import annotations

import re

__all__ = [
    "IFNAMSIZ",
    "RESERVED_PREFIXES",
    "check_device_name",
    "check_network_name",
    "check_profile_id",
]

#: Linux's IFNAMSIZ is 16 bytes including the terminating NUL.
IFNAMSIZ = 16
#: Target device prefixes libvirt treats as its own: a name starting with one is replaced by a
#: generated one (vnet0, macvtap0, ...), so the host side would not find the device it expects.
RESERVED_PREFIXES = ("vnet", "vif", "macvtap", "macvlan")
#: Characters allowed in the name of a device vifplug creates or names (a subset of what the
#: kernel allows, so names are safe in argv, OVSDB and XML without quoting).
_DEVICE_CHARS = re.compile(r"[A-Za-z0-9_.\-]+")
_NETWORK_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


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
