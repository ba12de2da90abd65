"""libvirt versions: parsed from ``X.Y.Z`` or from ``virConnect.getLibVersion()``'s integer."""

from __future__ import annotations

import re
from typing import NamedTuple

from vifplug.errors import VifError

__all__ = ["LibvirtVersion"]

_VERSION = re.compile(r"(\d{1,4})\.(\d{1,3})(?:\.(\d{1,3}))?")


class LibvirtVersion(NamedTuple):
    """A libvirt release, comparable as a tuple: ``LibvirtVersion(0, 9, 11) < (3, 1, 0)``."""

    major: int
    minor: int
    micro: int = 0

    @classmethod
    def parse(cls, text: str) -> LibvirtVersion:
        """``'9.0.0'`` or ``'0.9'`` → a version; a :class:`~vifplug.errors.VifError` otherwise."""
        match = _VERSION.fullmatch(text.strip())
        if not match:
            raise VifError(f"libvirt version: expected X.Y.Z like 9.0.0 (got {text!r})")
        major, minor, micro = match.groups()
        return cls(int(major), int(minor), int(micro or 0))

    @classmethod
    def from_int(cls, number: int) -> LibvirtVersion:
        """libvirt's encoding: ``major * 1,000,000 + minor * 1,000 + micro``."""
        if number < 0:
            raise VifError(f"libvirt version: expected a non-negative integer (got {number})")
        return cls(number // 1_000_000, number // 1_000 % 1_000, number % 1_000)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.micro}"
