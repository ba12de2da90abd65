"""vifplug's error types.

Every error derives from :class:`VifplugError` and also from the builtin that matches its meaning
(``ValueError`` for bad input, ``LookupError`` for something missing), so callers may catch either.
Errors about input carry the JSON path of the offending value (``$.network.vlan``, ``$[2].mac``).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "InvalidVifError",
    "UnsupportedError",
    "VifError",
    "VifplugError",
    "json_path",
]


class VifplugError(Exception):
    """Base of every error vifplug raises on purpose."""

    #: The process exit code the CLI uses for this error (2: bad input, 1: anything else).
    exit_code = 1


class VifError(VifplugError, ValueError):
    """Bad input: a VIF (or option) that vifplug cannot accept. Changes nothing on the host."""

    exit_code = 2


class InvalidVifError(VifError):
    """A VIF description that breaks the vif.json contract.

    ``problems`` lists ``(path, message)`` pairs, one per broken rule; ``str()`` joins them one per
    line as ``<source>: <path>: <message>``.
    """

    def __init__(self, problems: Sequence[tuple[str, str]], source: str | None = None) -> None:
        self.problems: tuple[tuple[str, str], ...] = tuple(problems)
        self.source = source
        super().__init__(self._format())

    def _format(self) -> str:
        prefix = f"{self.source}: " if self.source else ""
        return "\n".join(f"{prefix}{path}: {message}" for path, message in self.problems)

    @property
    def path(self) -> str:
        """The JSON path of the first problem."""
        return self.problems[0][0]

    def with_source(self, source: str) -> InvalidVifError:
        """The same problems, reported as coming from ``source`` (a file name)."""
        return InvalidVifError(self.problems, source)


class UnsupportedError(VifError):
    """A valid VIF that cannot be connected with the given options (e.g. too old a libvirt)."""


def json_path(loc: Sequence[str | int]) -> str:
    """``('network', 'vlan')`` → ``$.network.vlan``; ``(2, 'mac')`` → ``$[2].mac``."""
    parts = ["$"]
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item.replace("_", "").replace("-", "").isalnum():
            parts.append(f".{item}")
        else:
            parts.append(f"[{item!r}]")
    return "".join(parts)
