"""Can this host take the guest? The device checks of a migration's preflight.

For every vifplug interface of a domain *as the hook rewrote it for this host*, what the
rewrite points at must exist now and fit:

- a Linux bridge network: the bridge exists and is a Linux bridge (``/sys/class/net/B/bridge``);
- an OVS or OVN network: the OVS bridge has a row in OVSDB (asked over the OVSDB socket, one
  JSON-RPC ``transact``, no library);
- a macvtap network: the NIC exists (``/sys/class/net/D``);
- MTU: the guest's ``<mtu size>`` is at most the network's — the map's ``mtu`` when it gives
  one, else the MTU of the bridge or NIC in the kernel (an OVS bridge without a kernel device
  is not checked).

:func:`device_problems` returns one line per problem (empty: ready). The qemu hook runs it on
``migrate begin`` right after the rewrite (unless the map says ``strict = false``) and refuses
the guest with the first line, so libvirt fails the migration before any memory is copied;
``vifplug hook check`` runs it, and for OVN networks also asks the southbound database whether
this chassis is registered, and prints every line. Light like the hook: the standard library,
the map and the hook's parser; sysfs and the OVSDB socket, never libvirt.
"""

from __future__ import annotations

import json
import os
import socket
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from vifplug.hook import definition_of, interface_networks, parse_domain
from vifplug.netmap import (
    DirectNetwork,
    LegacyNetwork,
    MappedNetwork,
    NetworkMap,
    OvnNetwork,
    OvsNetwork,
)

__all__ = ["DEFAULT_OVSDB_SOCKET", "SYSFS", "Ovsdb", "OvsdbView", "device_problems",
           "ovsdb_view"]

SYSFS = "/sys/class/net"
DEFAULT_OVSDB_SOCKET = "/run/openvswitch/db.sock"
#: How long the OVSDB socket may take to answer (the hook runs while libvirt waits).
TIMEOUT = 2.0


class OvsdbView(NamedTuple):
    """What the checks need of OVSDB: the bridges, and the Open_vSwitch row's external_ids."""

    bridges: frozenset[str]
    external_ids: dict[str, str]


#: Reads OVSDB once (a seam: the tests give a fixed view); raises OSError when it cannot.
Ovsdb = Callable[[], OvsdbView]


def device_problems(domain_xml: str | bytes, host_map: NetworkMap, *, sysfs: str = SYSFS,
                    ovsdb: Ovsdb | None = None) -> list[str]:
    """One line per problem with the vifplug interfaces of ``domain_xml`` (rewritten for
    ``host_map``) on this host now; empty when every one can be connected. OVSDB is asked at
    most once, and only when an interface is on an OVS or OVN network."""
    root = parse_domain(domain_xml)
    read = ovsdb or ovsdb_view
    view: OvsdbView | str | None = None  # the view, or why it could not be read
    problems: list[str] = []
    for mac, name, iface in interface_networks(root):
        network = definition_of(host_map, name, iface)  # the option it got, for a list
        if network is None:
            continue  # the rewrite refused it already
        if isinstance(network, OvsNetwork | OvnNetwork) and view is None:
            try:
                view = read()
            except OSError as exc:
                view = f"cannot read OVSDB ({exc})"
        problems += [f"interface {mac}: network {name!r}: {line}"
                     for line in _check(iface, network, sysfs, view)]
    return problems


def _check(iface: ET.Element, network: MappedNetwork, sysfs: str,
           view: OvsdbView | str | None) -> Iterator[str]:
    source = iface.find("source")
    device = None if source is None else source.get("dev") or source.get("bridge")
    if device is None:
        return
    kernel = os.path.join(sysfs, device)
    if isinstance(network, LegacyNetwork):
        if not os.path.isdir(os.path.join(kernel, "bridge")):
            what = "is not a Linux bridge" if os.path.exists(kernel) else "does not exist"
            yield f"Linux bridge {device} {what} on this host"
            return
    elif isinstance(network, DirectNetwork):
        if not os.path.exists(kernel):
            yield f"NIC {device} does not exist on this host"
            return
    else:
        if isinstance(view, str):
            yield f"OVS bridge {device}: {view}"
            return
        assert view is not None  # noqa: S101 - read above for every OVS/OVN network
        if device not in view.bridges:
            yield f"OVS bridge {device} does not exist on this host (no Bridge row in OVSDB)"
            return
    yield from _mtu(iface, network, device, kernel)


def _mtu(iface: ET.Element, network: MappedNetwork, device: str, kernel: str) -> Iterator[str]:
    element = iface.find("mtu")
    wanted = element.get("size") if element is not None else None
    if wanted is None or not wanted.isdigit():
        return
    mapped: int | None = getattr(network, "mtu", None)
    have, where = (mapped, "the map's mtu") if mapped is not None else (
        _kernel_mtu(kernel), f"{device}'s MTU")
    if have is not None and int(wanted) > have:
        yield f"the guest's MTU {wanted} is larger than {where}, {have}"


def _kernel_mtu(kernel: str) -> int | None:
    try:
        with open(os.path.join(kernel, "mtu")) as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


# --- OVSDB over its socket ----------------------------------------------------------------------


def ovsdb_view(path: str = DEFAULT_OVSDB_SOCKET, *, timeout: float = TIMEOUT) -> OvsdbView:
    """The bridges and the Open_vSwitch row's external_ids, in one ``transact`` of two
    ``select``s over the unix socket at ``path``; OSError when it cannot be read."""
    request = {"id": 0, "method": "transact", "params": [
        "Open_vSwitch",
        {"op": "select", "table": "Bridge", "where": [], "columns": ["name"]},
        {"op": "select", "table": "Open_vSwitch", "where": [], "columns": ["external_ids"]},
    ]}
    reply = _call(path, request, timeout)
    result = reply.get("result")
    if reply.get("error") is not None or not isinstance(result, list) or len(result) != 2:
        raise OSError(f"OVSDB at {path} answered {str(reply)[:200]}")
    bridges = frozenset(str(row.get("name")) for row in result[0].get("rows", []))
    rows = result[1].get("rows", [])
    ids = _ovsdb_map(rows[0].get("external_ids")) if rows else {}
    return OvsdbView(bridges, ids)


def _call(path: str, request: dict[str, Any], timeout: float) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(json.dumps(request).encode())
        decoder = json.JSONDecoder()
        buffer = ""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                raise OSError(f"OVSDB at {path} closed the connection")
            buffer += chunk.decode()
            try:
                reply, _ = decoder.raw_decode(buffer.lstrip())
            except ValueError:
                continue  # not all of it yet
            if isinstance(reply, dict) and reply.get("id") == request["id"]:
                return reply
            buffer = ""  # a notification or an echo: not ours


def _ovsdb_map(value: Any) -> dict[str, str]:
    # vifplug.host.ovsjson.ovsdb_map's twin: importing vifplug.host would load pyroute2 into
    # the hook
    if isinstance(value, list) and len(value) == 2 and value[0] == "map":
        return {str(key): str(item) for key, item in value[1]}
    return {}
