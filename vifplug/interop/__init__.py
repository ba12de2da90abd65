"""The ecosystem's VIF models in (os-vif objects and primitives, nova network_info VIFs, Neutron
ports) and os-vif out; vifplug as an os-vif plugin.

    from vifplug.interop import coerce_vif, load_foreign
    vif = coerce_vif(os_vif_vif)                     # a Vif passes through
    vifs = load_foreign(json.load(f), "neutron", network_name="red", mtu=1450)

Each model's module says how its fields map: :mod:`vifplug.interop.os_vif`,
:mod:`vifplug.interop.nova`, :mod:`vifplug.interop.neutron`. Foreign input that does not make a
valid VIF raises :class:`InteropError` (a :class:`~vifplug.errors.VifError`, exit 2) naming the
path *in that input* (``$.address``, ``$['binding:vif_type']``) and what was expected.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Literal

from vifplug.errors import InvalidVifError, VifError
from vifplug.interop._build import Translation
from vifplug.interop.errors import InteropError
from vifplug.loading import vifs_from_data
from vifplug.model import Vif

__all__ = ["KINDS", "InteropError", "coerce_vif", "load_foreign"]

Kind = Literal["os-vif", "nova", "neutron"]
#: The foreign models ``load_foreign`` (and the CLI's ``--from``) read.
KINDS: tuple[Kind, ...] = ("os-vif", "nova", "neutron")


def coerce_vif(obj: object) -> Vif:
    """``obj`` as a :class:`~vifplug.model.Vif`: a Vif is returned as it is; an os-vif VIF object
    (duck-typed, so os-vif is imported only when one is given) is converted with
    :func:`~vifplug.interop.os_vif.from_os_vif`. Anything else is a ``TypeError``."""
    if isinstance(obj, Vif):
        return obj
    from vifplug.interop.os_vif import from_os_vif, is_os_vif_vif

    if is_os_vif_vif(obj):
        return from_os_vif(obj)
    raise TypeError(f"expected a vifplug Vif or an os-vif VIF object (got {type(obj).__name__})")


def load_foreign(data: object, kind: Kind, *, network_name: str | None = None,
                 mtu: int | None = None, source: str | None = None,
                 portgroup: str | None = None) -> list[Vif]:
    """VIFs from parsed JSON in a foreign model: one object or a non-empty array of them.

    - ``os-vif``: each item is an os-vif VIF's ``obj_to_primitive()``
      (``{"versioned_object.name": "VIFBridge", "versioned_object.data": {...}, ...}``);
    - ``nova``: each item is a network_info VIF (the list is an instance's network_info);
    - ``neutron``: each item is a port; the API's envelopes ``{"port": {...}}`` and
      ``{"ports": [...]}`` are taken too. ``network_name`` (default: each port's
      ``network_id``) and ``mtu`` apply to every port, and only to Neutron input.

    ``portgroup``: every VIF's ``network.portgroup``, for any kind (none of these models carries
    a portgroup: it is the host map's notion, libvirt's ``<source portgroup>``).

    Raises :class:`InteropError` listing every problem with its path in ``data`` (``$[1].address``)
    and ``source`` (a file name) when given; :class:`~vifplug.errors.VifError` for a bad ``kind``
    or an option the kind does not take. Two items may not share an id, MAC or host device."""
    if kind not in KINDS:
        raise VifError(f"--from: expected one of {', '.join(KINDS)} (got {kind!r})")
    if kind != "neutron" and (network_name is not None or mtu is not None):
        option = "--network-name" if network_name is not None else "--mtu"
        raise VifError(f"{option}: only for --from neutron (a Neutron port has no network name "
                       "or MTU; the other models carry theirs)")
    try:
        return _load(data, kind, network_name, mtu, portgroup)
    except InteropError as exc:
        raise exc.with_source(source) if source else exc from None


def _items(data: object, kind: Kind) -> list[tuple[str, object]]:
    """``(path prefix, item)`` for each VIF of ``data``."""
    prefix = "$"
    if kind == "neutron" and isinstance(data, Mapping) and len(data) == 1:
        if "port" in data:
            return [("$.port", data["port"])]
        if "ports" in data:
            prefix, data = "$.ports", data["ports"]
    if isinstance(data, Mapping) and prefix == "$":
        return [("$", data)]
    if isinstance(data, list | tuple) and data:
        return [(f"{prefix}[{index}]", item) for index, item in enumerate(data)]
    what = {"os-vif": "an os-vif VIF primitive", "nova": "a nova network_info VIF",
            "neutron": "a Neutron port"}[kind]
    raise InteropError([(prefix, f"expected {what} or a non-empty array of them")], kind=kind)


def _load(data: object, kind: Kind, network_name: str | None, mtu: int | None,
          portgroup: str | None = None) -> list[Vif]:
    items = _items(data, kind)
    translations: list[tuple[str, Translation]] = []
    vifs: list[Vif] = []
    problems: list[tuple[str, str]] = []
    for prefix, item in items:
        try:
            translation = _translate(item, kind, network_name, mtu).portgroup(portgroup)
            vifs.append(translation.vif())
            translations.append((prefix, translation))
        except InteropError as exc:
            problems.extend(exc.under(prefix).problems)
    if problems:
        raise InteropError(problems, kind=kind)
    if len(vifs) > 1:
        try:
            vifs_from_data([vif.to_dict() for vif in vifs])
        except InvalidVifError as exc:
            raise InteropError([_located(path, message, translations)
                                for path, message in exc.problems], kind=kind) from None
    return vifs


def _translate(item: object, kind: Kind, network_name: str | None,
               mtu: int | None) -> Translation:
    if kind == "os-vif":
        from vifplug.interop import os_vif

        return os_vif.translate(os_vif.vif_from_primitive(item))
    if kind == "nova":
        from vifplug.interop import nova

        return nova.translate(item)
    from vifplug.interop import neutron

    return neutron.translate(item, network_name, mtu)


def _located(path: str, message: str,
             translations: Sequence[tuple[str, Translation]]) -> tuple[str, str]:
    """A vif.json problem about item ``$[i]`` of the converted list, at its foreign path."""
    index_text, _, rest = path[2:].partition("]")
    prefix, translation = translations[int(index_text)]
    foreign, said = translation.foreign("$" + rest, message)
    said = re.sub(r"\$\[(\d+)\]", lambda m: translations[int(m.group(1))][0], said)
    return prefix + foreign[1:] if foreign.startswith("$") else foreign, said
