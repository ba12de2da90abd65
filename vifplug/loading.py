"""vif.json in: a path, a JSON text or parsed data → validated :class:`~vifplug.model.Vif` values.

    from pathlib import Path
    from vifplug.loading import load_vifs
    vifs = load_vifs(Path("vif.json"))  # a str is JSON text, a Path a file

Every problem is reported at once as an :class:`~vifplug.errors.InvalidVifError` whose
``problems`` are ``(JSON path, expectation)`` pairs: duplicate JSON keys, pydantic's errors
translated into format 1's words (``required when vif_type is 'ovs'``, ``not used by vif_type
'bridge' (only 'ovs')``, ``unknown key (did you mean 'mtu'?)``), and values a file must not repeat
(ids, MACs, host device names).
"""

from __future__ import annotations

import difflib
import json
import os
import typing
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from vifplug.errors import InvalidVifError, json_path
from vifplug.model import (
    KINDS,
    VIF_TYPES,
    RuleError,
    Vif,
    kinds_requiring,
    kinds_taking,
    vif_adapter,
)

__all__ = ["MAX_DEPTH", "MAX_INT_DIGITS", "load_vifs", "parse_vif", "parse_vif_json",
           "vifs_from_data"]

#: The deepest nesting of arrays and objects vif.json may have (a real one has 4; Python's JSON
#: parser recurses per level and its stack gives out near 1,000).
MAX_DEPTH = 64
#: The longest integer literal accepted (Python's own limit for converting text to int).
MAX_INT_DIGITS = 4300


def parse_vif(data: object, *, loc: tuple[str | int, ...] = (),
              kind: type[Vif] | None = None) -> Vif:
    """Validate parsed JSON data into the Vif of its kind (``kind``: only that one); errors
    name paths under ``loc``.

    The kind is the one ``vif_type`` names, as the discriminated union
    :data:`~vifplug.model.AnyVif` picks it; but only that kind's validator is built here, where
    pydantic would build every member of the union on first use (90 ms more for a CLI's first
    render). Data without a known ``vif_type`` goes through the union, for its errors.
    """
    if kind is None and isinstance(data, Mapping):
        tag = data.get("vif_type")
        kind = KINDS.get(tag) if isinstance(tag, str) else None
    try:
        if kind is not None:
            return kind.model_validate(data)
        return vif_adapter().validate_python(data)
    except ValidationError as exc:
        raise InvalidVifError(_problems(exc, loc, kind)) from None
    except RecursionError:
        raise InvalidVifError([(json_path(loc), "nested too deeply")]) from None



class _Object(dict[str, Any]):
    """A parsed JSON object that remembers keys given more than once."""

    duplicates: tuple[str, ...] = ()


def _object_pairs(pairs: list[tuple[str, Any]]) -> _Object:
    obj = _Object(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        obj.duplicates = tuple(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
    return obj


class _HugeInt(str):
    """An integer literal too long to convert (Python refuses more than 4,300 digits): kept
    as its text so that the walk can report it at its path."""


def _parse_int(text: str) -> int | _HugeInt:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        return _HugeInt(text)
    return int(text)


def _walk_problems(value: object, loc: tuple[str | int, ...]) -> Iterator[tuple[str, str]]:
    """Keys given twice and integers too long, each at its path."""
    if isinstance(value, _Object):
        for key in value.duplicates:
            yield json_path((*loc, key)), "key given more than once (the last would win silently)"
        for key, item in value.items():
            yield from _walk_problems(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk_problems(item, (*loc, index))
    elif isinstance(value, _HugeInt):
        yield json_path(loc), (f"an integer of {len(value.lstrip('-'))} digits (at most "
                               f"{MAX_INT_DIGITS}; no field takes more than a few)")


def _too_deep(text: str) -> tuple[int, int] | None:
    """(line, column) where arrays and objects first nest deeper than MAX_DEPTH, else None
    (brackets in strings do not count). A real vif.json nests 4 levels."""
    depth, in_string, escaped = 0, False, False
    for offset, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                line = text.count("\n", 0, offset) + 1
                return line, offset - text.rfind("\n", 0, offset)
        elif char in "]}":
            depth -= 1
    return None


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
        deep = _too_deep(raw)
        if deep is not None:
            raise InvalidVifError([("$", f"arrays or objects nested more than {MAX_DEPTH} deep "
                                    f"(line {deep[0]}, column {deep[1]})")])
        try:
            data = json.loads(raw, object_pairs_hook=_object_pairs, parse_int=_parse_int)
        except json.JSONDecodeError as exc:
            raise InvalidVifError(
                [("$", f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")]
            ) from None
        problems = list(_walk_problems(data, ()))
        if problems:
            raise InvalidVifError(problems)
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
        return [parse_vif(data)]
    if not isinstance(data, list | tuple) or not data:
        raise InvalidVifError([("$", "expected a VIF object or a non-empty array of VIF objects")])
    vifs: list[Vif] = []
    problems: list[tuple[str, str]] = []
    for index, item in enumerate(data):
        try:
            vifs.append(parse_vif(item, loc=(index,)))
        except InvalidVifError as exc:
            problems.extend(exc.problems)
    if problems:
        raise InvalidVifError(problems)
    problems.extend(_duplicates(vifs))
    problems.extend(_teaming_pairs(vifs))
    if problems:
        raise InvalidVifError(problems)
    return vifs


def _duplicates(vifs: list[Vif]) -> Iterator[tuple[str, str]]:
    """Two VIFs of one file must not share an id, a MAC, a host device name or an alias; only
    the two halves of a failover pair (``teaming``) share their MAC."""
    for key in ("id", "mac", "devname", "alias"):
        first: dict[str, int] = {}
        for index, vif in enumerate(vifs):
            item = _unique_value(vif, key)
            if item is None:
                continue
            if key == "mac" and item in first and _paired(vifs[first[item]], vif):
                continue
            if item in first:
                what = "host device" if key == "devname" else key
                yield (json_path((index, key)), f"{what} {item!r} is already used by "
                       f"$[{first[item]}] (must be unique in a file)")
            else:
                first[item] = index


def _paired(one: Vif, other: Vif) -> bool:
    """Whether two VIFs are the persistent and transient halves of one failover pair."""
    for persistent, transient in ((one, other), (other, one)):
        first, second = persistent.teaming_of, transient.teaming_of
        if (first is not None and second is not None and first.type == "persistent"
                and second.type == "transient"
                and second.persistent == persistent.device_alias):
            return True
    return False


def _teaming_pairs(vifs: list[Vif]) -> Iterator[tuple[str, str]]:
    """In an array, each ``teaming`` VIF has its partner: a transient VF names the alias of a
    persistent virtio VIF of the same MAC, and each persistent VIF has exactly one such VF."""
    by_alias = {vif.device_alias: index for index, vif in enumerate(vifs)
                if vif.device_alias is not None}
    partners: dict[int, list[int]] = {}
    for index, vif in enumerate(vifs):
        teaming = vif.teaming_of
        if teaming is None or teaming.persistent is None:  # only a transient VF names one
            continue
        found = by_alias.get(teaming.persistent)
        if found is None:
            yield (json_path((index, "teaming", "persistent")), f"no VIF of this file has "
                   f"alias {teaming.persistent!r} (the persistent virtio partner must be in the "
                   "same array: its 'alias', else 'ua-' + its id)")
            continue
        partner = vifs[found]
        partner_teaming = partner.teaming_of
        if partner_teaming is None or partner_teaming.type != "persistent":
            yield (json_path((index, "teaming", "persistent")), f"names $[{found}], which has no "
                   "teaming of type 'persistent'")
            continue
        if partner.mac != vif.mac:
            yield (json_path((index, "mac")), f"must be the MAC of its persistent partner "
                   f"$[{found}] ({partner.mac}): the guest's failover driver pairs the two by MAC")
        partners.setdefault(found, []).append(index)
    for index, vif in enumerate(vifs):
        teaming = vif.teaming_of
        if teaming is None or teaming.type != "persistent":
            continue
        found_vfs = partners.get(index, [])
        if not found_vfs:
            yield (json_path((index, "teaming")), f"no hostdev VIF of this file names "
                   f"{vif.device_alias!r} as its persistent partner (give the pair together: "
                   "a transient VF with the same MAC)")
        elif len(found_vfs) > 1:
            yield (json_path((index, "teaming")), "is the persistent partner of more than one "
                   f"VF ({', '.join(f'$[{i}]' for i in found_vfs)}); a pair is one of each")


def _unique_value(vif: Vif, key: str) -> str | None:
    if key == "devname":  # the host device name, where the VIF has one
        return vif.host_device
    if key == "alias":
        return vif.device_alias
    value: str = getattr(vif, key)
    return value


# --- pydantic errors → (JSON path, expectation) -----------------------------------------------


def _problems(exc: ValidationError, prefix: tuple[str | int, ...],
              kind: type[Vif] | None) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for found in exc.errors():
        error: dict[str, Any] = dict(found)
        loc = tuple(error["loc"])
        vif_type: str | None
        if kind is None and loc and loc[0] in KINDS:
            # the union's errors are located under the tag: strip it
            vif_type, loc = str(loc[0]), loc[1:]
        else:
            vif_type = kind_name(kind)
        error_type = error["type"]
        ctx = error.get("ctx") or {}
        cause = ctx.get("error")
        if isinstance(cause, RuleError):
            for sub, message in cause.problems:
                problems.append((json_path((*prefix, *loc, *sub)), message))
            continue
        if error_type in ("union_tag_not_found", "union_tag_invalid"):
            loc, error_type = ("vif_type",), ("missing" if error_type == "union_tag_not_found"
                                              else "literal_error")
            ctx = {"expected": _one_of(VIF_TYPES)}
            given = error.get("input")
            error["input"] = given.get("vif_type") if isinstance(given, Mapping) else None
        if error_type == "missing" and vif_type is not None and len(loc) in (1, 2):
            where = KINDS[vif_type].missing_reported_at.get(str(loc[0]), loc)
            if len(kinds_requiring(loc)) not in (0, len(KINDS)):
                problems.append((json_path((*prefix, *where)),
                                 f"required when vif_type is {vif_type!r}"))
                continue
        if error_type == "extra_forbidden" and vif_type is not None:
            others = kinds_taking(loc)
            if others:
                problems.append((json_path((*prefix, *loc)), f"not used by vif_type "
                                 f"{vif_type!r} (only {_kinds(others)})"))
                continue
        root: type[BaseModel] | None = KINDS[vif_type] if vif_type is not None else None
        problems.append((json_path((*prefix, *loc)),
                         _message(error_type, error, ctx, loc, root)))
    return problems


def kind_name(kind: type[Vif] | None) -> str | None:
    for vif_type, found in KINDS.items():
        if found is kind:
            return vif_type
    return None


def _one_of(values: Sequence[str]) -> str:
    quoted = [repr(value) for value in values]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _kinds(kinds: Sequence[str]) -> str:
    return ", ".join(repr(k) for k in VIF_TYPES if k in kinds)


_TYPE_NAMES = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "bool_type": "true or false", "bool_parsing": "true or false",
    "string_type": "a string", "model_type": "an object", "dict_type": "an object",
    "model_attributes_type": "an object", "list_type": "an array", "tuple_type": "an array",
    "mapping_type": "an object",
}


def _message(kind: str, error: Any, ctx: dict[str, Any], loc: tuple[str | int, ...],
             root: type[BaseModel] | None) -> str:
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


def _known_keys(root: type[BaseModel] | None, loc: tuple[str | int, ...]) -> list[str]:
    if root is None:
        return []
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
