"""Building a vif.json object from foreign input while remembering where each value came from,
so that every error names the path in the input the caller actually gave (not vifplug's)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from vifplug import names
from vifplug.errors import InvalidVifError, json_path
from vifplug.interop.errors import InteropError
from vifplug.model import Vif

Loc = tuple[str | int, ...]

_NAME_BAD = re.compile(r"[^A-Za-z0-9_.\-]+")

_TYPE_NAMES: dict[type, str] = {str: "a string", bool: "true or false", int: "an integer",
                                dict: "an object", list: "an array"}


def network_name(text: str) -> str | None:
    """A logical network name from a foreign label: runs of characters vif.json does not allow
    become ``_`` (``"private net"`` → ``private_net``), cut to 64. ``None`` when nothing is left."""
    name = _NAME_BAD.sub("_", text).strip("_")[:64]
    return name or None


def default_tap(vif_id: object) -> str | None:
    """``tap`` + ``id[:11]``: the device name vif.json implies when ``devname`` is absent."""
    return names.tap_name(vif_id) if isinstance(vif_id, str) else None


class Translation:
    """A vif.json object under construction: ``put(loc, value, src)`` sets ``loc`` (a vif.json
    location) and remembers ``src`` (the foreign location it came from); ``fail(src, message)``
    records a problem with the input itself. :meth:`vif` validates and maps every vif.json problem
    back to the foreign path."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.data: dict[str, Any] = {}
        self.origin: dict[str, str] = {}
        self.problems: list[tuple[str, str]] = []

    def put(self, loc: tuple[str, ...], value: object, src: Loc | str | None) -> None:
        """Set ``loc`` to ``value`` (``None``: leave it out, but still remember where it would
        have come from, so a "required" error names the foreign field). ``src`` is a location in
        the foreign input, or a ``str`` naming an argument (``network_name``)."""
        if src is not None:
            self.origin[json_path(loc)] = src if isinstance(src, str) else json_path(src)
        if value is None:
            return
        node = self.data
        for key in loc[:-1]:
            node = node.setdefault(key, {})
        node[loc[-1]] = value

    def portgroup(self, name: str | None) -> Translation:
        """Set ``network.portgroup`` to ``name`` (the ``portgroup`` argument: no foreign model
        carries one — libvirt's portgroups are vifplug's map's, not nova's, os-vif's or
        Neutron's); None leaves it out. Itself, to chain."""
        self.put(("network", "portgroup"), name, "portgroup")
        return self

    def fail(self, src: Loc | str, message: str) -> None:
        self.problems.append((src if isinstance(src, str) else json_path(src), message))

    def vif(self) -> Vif:
        """The validated Vif; every problem (the input's own, then the vif.json rules it breaks)
        in one :class:`InteropError`. After a problem with the input itself, vif.json problems
        are added only where they name another foreign field (not the consequences of what the
        translation already refused, such as a missing ``vif_type``)."""
        problems = list(self.problems)
        try:
            vif = Vif.parse(self.data)
        except InvalidVifError as exc:
            seen = {path for path, _ in problems}
            for path, message in exc.problems:
                foreign = self.foreign(path, message)
                if foreign[0] not in seen and not (self.problems and foreign[0] == "$"):
                    problems.append(foreign)
        if problems:
            raise InteropError(problems, kind=self.kind) from None
        return vif

    def foreign(self, path: str, message: str) -> tuple[str, str]:
        """A vif.json problem (``path``, ``message``) restated at the foreign path it came from."""
        best = ""
        for known in self.origin:
            if len(known) > len(best) and (path == known or path.startswith((known + ".",
                                                                             known + "["))):
                best = known
        if not best:
            return "$", f"{message} (vif.json {path})"
        foreign = self.origin[best] + path[len(best):]
        return foreign, message if foreign == path else f"{message} (vif.json {path})"


class Reader:
    """Typed reads from one object of a foreign JSON document, located at ``loc``; a wrong type
    or a missing required key is recorded on the translation (and reads as ``None``)."""

    def __init__(self, data: Mapping[str, Any], loc: Loc, translation: Translation) -> None:
        self.data = data
        self.loc = loc
        self.t = translation

    def at(self, key: str) -> Loc:
        return (*self.loc, key)

    def get(self, key: str, kind: type, *, required: str | None = None) -> Any:
        """The value of ``key`` if it is a ``kind`` (``None`` when absent or JSON null);
        ``required`` is the reason it may not be absent."""
        value = self.data.get(key)
        if value is None:
            if required is not None:
                self.t.fail(self.at(key), f"required: {required}")
            return None
        if not _is_a(value, kind):
            self.t.fail(self.at(key), f"must be {_TYPE_NAMES[kind]} (got {value!r})")
            return None
        return value

    def number(self, key: str, *, required: str | None = None) -> int | None:
        """An integer, also given as a string of digits (nova and Neutron pass some numbers on
        as the strings the API was given)."""
        value = self.data.get(key)
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        result: int | None = self.get(key, int, required=required)
        return result

    def sub(self, key: str, *, required: str | None = None) -> Reader:
        """The object at ``key`` (an empty one when absent or not an object)."""
        value = self.get(key, dict, required=required)
        return Reader(value if value is not None else {}, self.at(key), self.t)


def put_trusted(t: Translation, profile: Reader) -> None:
    """Neutron's ``binding:profile`` ``trusted`` (a boolean, or the string nova parses as one)
    → ``trust_guest_rx_filters`` (nova's ``trustGuestRxFilters`` for SR-IOV ports)."""
    value = profile.data.get("trusted")
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no"):
        value = value.strip().lower() in ("true", "yes")
    if value is None:
        return
    if not isinstance(value, bool):
        t.fail(profile.at("trusted"), f"must be true or false (got {value!r})")
        return
    t.put(("trust_guest_rx_filters",), value, profile.at("trusted"))


def _is_a(value: object, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is dict:
        return isinstance(value, Mapping)
    return isinstance(value, kind)


def start(kind: str, data: object, what: str) -> tuple[Translation, Reader | None]:
    """A translation of ``data``, a foreign ``what`` object, and a reader of it (``None`` when
    ``data`` is no object: the translation says so already)."""
    t = Translation(kind)
    if not isinstance(data, Mapping):
        t.fail((), f"expected a {what} object")
        return t, None
    return t, Reader(data, (), t)


def put_identity(t: Translation, r: Reader, *, id_what: str, mac_key: str,
                 mac_what: str) -> str | None:
    """vif.json's ``id`` and ``mac`` from the object's ``id`` and ``mac_key``; the id."""
    vif_id: str | None = r.get("id", str, required=id_what)
    t.put(("id",), vif_id, ("id",))
    t.put(("mac",), r.get(mac_key, str, required=mac_what), (mac_key,))
    return vif_id
