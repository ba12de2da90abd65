"""Move running guests' interfaces to another switch in place, through libvirt.

When a host's network map changes how a network is switched (``red`` from a Linux bridge to OVS
``br-int`` with VLAN 100, or back), every running guest with an interface on that network must
follow: its TAP moves to the new switch and libvirt's live XML must say so (a later unplug or
live migration reads it). This module does that through libvirt only, never by changing the host
behind libvirt's back:

- :func:`plan_moves` (pure): for each guest's domain XML, the interfaces on the moving networks
  and what they become — :func:`vifplug.hook.rewrite`, the migration hook's own rewrite, limited
  to those networks — and how libvirt can apply it (:data:`UPDATE` or :data:`RESTORE`).
- :func:`guests_on_moving_networks` / :func:`refuse_guests`: who would move (``--guests=refuse``).
- :func:`move_guests`: apply every move, guest after guest; if one fails, the guests already
  moved are moved back in reverse order and :class:`GuestMoveError` names the domain, the MAC and
  libvirt's message.

What libvirt 9.0 changes on a running guest (measured; docs/src/guest-moves.md):
``virDomainUpdateDeviceFlags(AFFECT_LIVE)`` moves a TAP between two Linux bridges, and changes an
OVS port's VLAN (access tag, trunk, none) in place; it refuses any change of ``<virtualport>``
(added, removed, another interfaceid) and any bridge change while a virtualport is there ("unable
to change config on 'bridge' network type"), and a ``<vlan>`` on a Linux bridge. So a move from a
Linux bridge to OVS, or back, cannot be a device update: vifplug saves the guest
(``virDomainSaveFlags``: paused, its memory to a file) and restores it at once with the
rewritten definition (``virDomainRestoreFlags`` with that XML): the same QEMU state, MAC and PCI
address, the TAP created on the new switch by libvirt; the guest is paused for the time of a
save and a restore. A restore that fails is retried with the saved definition, so the guest comes
back as it was.

libvirt is reached read-write here only; the hook never calls into libvirt.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any, Literal, NamedTuple

from vifplug.errors import VifplugError
from vifplug.hook import HookError, parse_domain, rewrite
from vifplug.netmap import NetworkMap
from vifplug.spec import METADATA_NS, METADATA_PREFIX

__all__ = [
    "RESTORE",
    "UPDATE",
    "GuestDomain",
    "GuestMove",
    "GuestMoveError",
    "GuestsOnMovingNetworks",
    "InterfaceMove",
    "guests_on_moving_networks",
    "live_updatable",
    "move_guests",
    "moving_networks",
    "plan_moves",
    "read_guests",
    "refuse_guests",
]

#: The move is a device update per interface (``virDomainUpdateDeviceFlags``, AFFECT_LIVE).
UPDATE: Literal["update"] = "update"
#: The move is a save and an immediate restore with the rewritten definition.
RESTORE: Literal["restore"] = "restore"
Method = Literal["update", "restore"]

_LIST_TAG = f"{{{METADATA_NS}}}interfaces"
# libvirt's constants, so that planning needs no libvirt-python (checked against it in tests)
_AFFECT_LIVE = 1
_AFFECT_CONFIG = 2
_METADATA_ELEMENT = 2
_XML_SECURE = 1
_XML_INACTIVE = 2
_SAVE_RUNNING = 2
_SAVE_PAUSED = 4
_STATE_PAUSED = 3


class GuestMoveError(VifplugError, RuntimeError):
    """A guest could not be moved (or moved back); the message names the domain, the MAC when an
    interface failed, libvirt's message, and what was rolled back."""


class GuestsOnMovingNetworks(VifplugError, RuntimeError):
    """Guests run on networks whose switch would change, and moving them was not asked for."""

    def __init__(self, message: str, moves: Sequence[GuestMove]) -> None:
        super().__init__(message)
        self.moves = tuple(moves)


class GuestDomain(NamedTuple):
    """A running guest as libvirt describes it."""

    name: str
    #: The live definition (``XMLDesc(0)``).
    live_xml: str
    #: The persistent definition (``XMLDesc(VIR_DOMAIN_XML_INACTIVE)``); None: a transient guest.
    config_xml: str | None = None


class InterfaceMove(NamedTuple):
    """One interface of a guest and what it becomes."""

    mac: str
    network: str
    #: The ``<interface>`` as it is live now, and as it is to be (the hook's rewrite).
    old_xml: str
    new_xml: str


class GuestMove(NamedTuple):
    """Everything that changes for one guest."""

    domain: str
    interfaces: tuple[InterfaceMove, ...]
    #: :data:`UPDATE` when libvirt can change every interface live, else :data:`RESTORE`.
    method: Method
    #: The whole live definition rewritten (what a restore uses).
    live_xml: str
    #: vifplug's metadata element (live) before and after, when the rewrite changed it.
    metadata: tuple[str | None, str] | None
    #: The persistent definition before and after, when the guest is persistent and it changes.
    config: tuple[str, str] | None

    def pairs(self) -> list[tuple[str, str, str]]:
        """``(domain, old interface XML, new interface XML)`` per interface."""
        return [(self.domain, move.old_xml, move.new_xml) for move in self.interfaces]


def moving_networks(old_map: NetworkMap, new_map: NetworkMap) -> frozenset[str]:
    """The networks whose switching differs between the maps (changed, added or removed; a
    priority list compared as a whole)."""
    names = set(old_map.networks) | set(new_map.networks)
    return frozenset(name for name in names
                     if old_map.definitions(name) != new_map.definitions(name))


def plan_moves(guests: Iterable[GuestDomain], old_map: NetworkMap, new_map: NetworkMap, *,
               networks: Collection[str] | None = None) -> list[GuestMove]:
    """What moving from ``old_map`` to ``new_map`` changes in each guest (pure).

    Only interfaces on ``networks`` (default: :func:`moving_networks`) are rewritten, for
    ``new_map``, by :func:`vifplug.hook.rewrite` — so an interface belongs to a network by the
    hook's rules (vifplug's metadata by MAC, else a ``<source bridge>`` that names a network of
    ``new_map``), and is rewritten exactly as an incoming migration would be. Guests with nothing
    to change are left out. Raises :class:`GuestMoveError` naming the domain when a guest's
    interface is on a network ``new_map`` lacks."""
    moving = moving_networks(old_map, new_map) if networks is None else frozenset(networks)
    moves: list[GuestMove] = []
    if not moving:
        return moves
    for guest in guests:
        try:
            new_live = rewrite(guest.live_xml, new_map, networks=moving)
            new_config = (None if guest.config_xml is None else
                          rewrite(guest.config_xml, new_map, networks=moving))
        except HookError as exc:
            raise GuestMoveError(f"domain {guest.name!r}: {exc}") from None
        old_root, new_root = parse_domain(guest.live_xml), parse_domain(new_live)
        interfaces = _changed_interfaces(old_root, new_root)
        old_meta, new_meta = _metadata_text(old_root), _metadata_text(new_root)
        metadata = None
        if new_meta is not None and new_meta != old_meta:
            metadata = (old_meta, new_meta)
        config = None
        if guest.config_xml is not None and new_config is not None \
                and _canonical(guest.config_xml) != _canonical(new_config):
            config = (guest.config_xml, new_config)
        if not interfaces and metadata is None and config is None:
            continue
        method: Method = (UPDATE if all(live_updatable(m.old_xml, m.new_xml)
                                        for m in interfaces) else RESTORE)
        moves.append(GuestMove(guest.name, tuple(interfaces), method, new_live, metadata,
                               config))
    return moves


def live_updatable(old_xml: str, new_xml: str) -> bool:
    """Whether libvirt 9.0's ``virDomainUpdateDeviceFlags(AFFECT_LIVE)`` accepts this change of
    a running ``<interface>`` (measured: docs/src/guest-moves.md): both ``type='bridge'``, the
    same ``<virtualport>``, and either another Linux bridge (no virtualport, no VLAN) or, on
    the same OVS bridge, another ``<vlan>``."""
    old, new = ET.fromstring(old_xml), ET.fromstring(new_xml)  # noqa: S314 - our own output
    if old.get("type") != "bridge" or new.get("type") != "bridge":
        return False
    old_port, new_port = _port(old), _port(new)
    if old_port != new_port:
        return False
    same_bridge = _bridge(old) == _bridge(new)
    same_vlan = _vlan(old) == _vlan(new)
    if not same_bridge:
        return old_port is None and _vlan(old) is None and _vlan(new) is None
    return same_vlan or (new_port is not None and new_port[0] == "openvswitch")


def _port(iface: ET.Element) -> tuple[str, tuple[tuple[str, str], ...]] | None:
    port = iface.find("virtualport")
    if port is None:
        return None
    params = port.find("parameters")
    return (port.get("type") or "",
            tuple(sorted(params.attrib.items())) if params is not None else ())


def _bridge(iface: ET.Element) -> str | None:
    source = iface.find("source")
    return source.get("bridge") if source is not None else None


def _vlan(iface: ET.Element) -> tuple[str | None, tuple[str, ...]] | None:
    vlan = iface.find("vlan")
    if vlan is None:
        return None
    return vlan.get("trunk"), tuple(tag.get("id") or "" for tag in vlan.iterfind("tag"))


def _mac(iface: ET.Element) -> str:
    mac = iface.find("mac")
    return (mac.get("address") or "").lower() if mac is not None else ""


def _xml(element: ET.Element) -> str:
    copy = ET.fromstring(ET.tostring(element))  # noqa: S314 - our own output
    copy.tail = None
    ET.register_namespace(METADATA_PREFIX, METADATA_NS)
    return ET.tostring(copy, encoding="unicode")


def _canonical(text: str) -> str:
    return ET.canonicalize(text, strip_text=True)


def _changed_interfaces(old_root: ET.Element, new_root: ET.Element) -> list[InterfaceMove]:
    new_by_mac = {_mac(i): i for i in new_root.iterfind("devices/interface")}
    entries = {e.get("mac", "").lower(): e.get("network", "")
               for e in new_root.iterfind(f"metadata/{_LIST_TAG}/{{{METADATA_NS}}}interface")}
    moves = []
    for old in old_root.iterfind("devices/interface"):
        mac = _mac(old)
        new = new_by_mac.get(mac)
        if new is None:
            continue
        old_xml, new_xml = _xml(old), _xml(new)
        if _canonical(old_xml) != _canonical(new_xml):
            moves.append(InterfaceMove(mac, entries.get(mac, ""), old_xml, new_xml))
    return moves


def _metadata_text(root: ET.Element) -> str | None:
    found = root.find(f"metadata/{_LIST_TAG}")
    return None if found is None else _xml(found)


# --- libvirt ------------------------------------------------------------------------------------


def read_guests(conn: Any) -> list[GuestDomain]:
    """The running guests of a libvirt connection, with their live and persistent XML."""
    import libvirt

    guests = []
    for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
        try:
            live = dom.XMLDesc(0)
            config = dom.XMLDesc(_XML_INACTIVE) if dom.isPersistent() else None
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                continue  # it stopped meanwhile: nothing to move
            raise
        guests.append(GuestDomain(dom.name(), live, config))
    return guests


def guests_on_moving_networks(conn: Any, old_map: NetworkMap,
                              new_map: NetworkMap) -> list[GuestMove]:
    """The running guests of ``conn`` that a move from ``old_map`` to ``new_map`` changes."""
    return plan_moves(read_guests(conn), old_map, new_map)


def describe(moves: Sequence[GuestMove]) -> str:
    """One line per guest: its name, and each interface's MAC and network."""
    return "; ".join(
        f"{move.domain} ({', '.join(f'{i.mac} on {i.network}' for i in move.interfaces)})"
        if move.interfaces else move.domain for move in moves)


def refuse_guests(conn: Any, old_map: NetworkMap, new_map: NetworkMap) -> None:
    """``--guests=refuse``: raise :class:`GuestsOnMovingNetworks` naming every running guest
    (domain, MAC, network) on a network whose switch changes; return when there is none."""
    moves = guests_on_moving_networks(conn, old_map, new_map)
    if moves:
        raise GuestsOnMovingNetworks(
            f"{len(moves)} running guest(s) on networks whose switch changes: {describe(moves)}; "
            "stop or migrate them, or move them with --guests=move", moves)


class _Applied(NamedTuple):
    """One step done, and how to undo it."""

    what: str
    undo: Callable[[], None]


def move_guests(conn: Any, old_map: NetworkMap, new_map: NetworkMap, *,
                save_dir: str | os.PathLike[str] | None = None,
                moves: Sequence[GuestMove] | None = None,
                before_rollback: Callable[[], None] | None = None) -> list[GuestMove]:
    """Move every running guest of ``conn`` (read-write) from ``old_map``'s switches to
    ``new_map``'s, in place; the moves done.

    Guest by guest, in the plan's order: its interfaces (a device update each, or one save and
    restore of the guest with its rewritten definition), then vifplug's live metadata
    (``setMetadata``, AFFECT_LIVE) when the rewrite changed it, then, for a persistent guest,
    its persistent definition (``defineXML`` of the rewritten one: the next boot on this host
    uses the new switch too). If any step fails, the guest's steps done are undone, then every
    guest moved before it is moved back, last first, and :class:`GuestMoveError` names the
    domain, the MAC, libvirt's message, and anything that could not be undone.

    ``save_dir``: where a save puts the guest's memory while it moves (a root-only directory
    that libvirtd sees at the same path; default: a new one under /var/tmp, removed after).
    ``moves``: a plan from :func:`plan_moves` (default: planned now from ``conn``).
    ``before_rollback``: called before anything is moved back (a switch transition puts the
    old map back at the qemu hook's path there: libvirt runs the hook on ``restore begin``)."""
    import libvirt

    moving = moving_networks(old_map, new_map)
    if moves is None:
        moves = guests_on_moving_networks(conn, old_map, new_map)
    if not moves:
        return []
    with contextlib.ExitStack() as stack:
        if save_dir is None:
            save_dir = tempfile.mkdtemp(prefix="vifplug-move-", dir="/var/tmp")
            stack.callback(_rmdir, save_dir)
        done: list[_Applied] = []
        for move in moves:
            try:
                _move_one(conn, move, new_map, networks=moving, save_dir=os.fspath(save_dir),
                          done=done)
            except (libvirt.libvirtError, GuestMoveError) as exc:
                if before_rollback is not None:
                    before_rollback()
                failures = _rollback(done)
                message = str(exc) if isinstance(exc, GuestMoveError) else \
                    f"domain {move.domain!r}: {exc}"
                undone = (f"; rolled back: {', '.join(a.what for a in reversed(done))}"
                          if done else "")
                left = f"; NOT rolled back: {'; '.join(failures)}" if failures else ""
                raise GuestMoveError(f"{message}{undone}{left}") from exc
    return list(moves)


def _rmdir(path: str | os.PathLike[str]) -> None:
    with contextlib.suppress(OSError):
        os.rmdir(path)


def _rollback(done: list[_Applied]) -> list[str]:
    failures = []
    for applied in reversed(done):
        try:
            applied.undo()
        except Exception as exc:  # keep undoing the rest; report every one left
            failures.append(f"{applied.what}: {exc}")
    return failures


def _lookup(conn: Any, name: str) -> Any:
    return conn.lookupByName(name)


def _move_one(conn: Any, move: GuestMove, new_map: NetworkMap, *, networks: frozenset[str],
              save_dir: str, done: list[_Applied]) -> None:
    import libvirt

    dom = _lookup(conn, move.domain)
    if move.method == UPDATE:
        for iface in move.interfaces:
            try:
                dom.updateDeviceFlags(iface.new_xml, _AFFECT_LIVE)
            except libvirt.libvirtError as exc:
                raise GuestMoveError(f"domain {move.domain!r}: interface {iface.mac} "
                                     f"(network {iface.network!r}): {exc}") from exc
            done.append(_Applied(f"{move.domain} interface {iface.mac}",
                                 _updater(conn, move.domain, iface.old_xml)))
        if move.metadata is not None:
            old_meta, new_meta = move.metadata
            try:
                dom.setMetadata(_METADATA_ELEMENT, _unqualified(new_meta), METADATA_PREFIX,
                                METADATA_NS, _AFFECT_LIVE)
            except libvirt.libvirtError as exc:
                raise GuestMoveError(f"domain {move.domain!r}: setting vifplug's metadata "
                                     f"failed: {exc}") from exc
            done.append(_Applied(f"{move.domain} metadata",
                                 _metadata_setter(conn, move.domain, old_meta)))
    elif move.interfaces or move.metadata is not None:
        def to_new(saved: str) -> str:
            return rewrite(saved, new_map, networks=networks)
        old_xml = _restore(conn, move, save_dir, to_new)
        def undo() -> None:
            _restore(conn, move, save_dir, lambda _: old_xml)
        done.append(_Applied(f"{move.domain} interfaces "
                             f"{', '.join(i.mac for i in move.interfaces)}", undo))
        _check_live(_lookup(conn, move.domain).XMLDesc(0), move)
    if move.config is not None:
        old_config, new_config = move.config
        conn.defineXML(new_config)
        done.append(_Applied(f"{move.domain} persistent definition",
                             lambda: _define(conn, old_config)))


def _switch(iface: ET.Element) -> tuple[object, ...]:
    """What says where an interface is plugged: type, source, virtualport, vlan."""
    source = iface.find("source")
    return (iface.get("type"), tuple(sorted(source.attrib.items())) if source is not None
            else (), _port(iface), _vlan(iface))


def _check_live(live_xml: str, move: GuestMove) -> None:
    """After a restore: each moved interface is live where the plan put it. It may not be when
    the qemu hook (``restore begin``) rewrote the definition with a map other than the new one."""
    live = {_mac(i): i for i in parse_domain(live_xml).iterfind("devices/interface")}
    for iface in move.interfaces:
        planned = ET.fromstring(iface.new_xml)  # noqa: S314 - our own output
        found = live.get(iface.mac)
        if found is None or _switch(found) != _switch(planned):
            got = "without it" if found is None else f"on {_place(found)}"
            raise GuestMoveError(
                f"domain {move.domain!r}: interface {iface.mac} (network {iface.network!r}): "
                f"libvirt restored it {got}, not on {_place(planned)}; was the qemu hook's "
                "network map (restore begin) the new one?")


def _place(iface: ET.Element) -> str:
    """Where an interface is plugged, in words: ``bridge br-int, virtualport openvswitch
    (interfaceid=...), vlan 100``."""
    source = iface.find("source")
    attrs = " ".join(f"{key}={value}" for key, value in sorted(
        (source.attrib if source is not None else {}).items()))
    words = [f"{iface.get('type')} {attrs}".strip()]
    port = _port(iface)
    if port is not None:
        params = " ".join(f"{key}={value}" for key, value in port[1])
        words.append(f"virtualport {port[0]}" + (f" ({params})" if params else ""))
    vlan = _vlan(iface)
    if vlan is not None:
        words.append(("trunk " if vlan[0] == "yes" else "vlan ") + ",".join(vlan[1]))
    return ", ".join(words)


def _define(conn: Any, xml: str) -> None:
    conn.defineXML(xml)


def _updater(conn: Any, name: str, xml: str) -> Callable[[], None]:
    def undo() -> None:
        _lookup(conn, name).updateDeviceFlags(xml, _AFFECT_LIVE)
    return undo


def _metadata_setter(conn: Any, name: str, text: str | None) -> Callable[[], None]:
    def undo() -> None:
        _lookup(conn, name).setMetadata(_METADATA_ELEMENT,
                                        None if text is None else _unqualified(text),
                                        METADATA_PREFIX if text else None, METADATA_NS,
                                        _AFFECT_LIVE)
    return undo


def _unqualified(text: str) -> str:
    """vifplug's metadata element without its namespace, as ``virDomainSetMetadata`` takes it:
    libvirt puts the element into the namespace it is given (with the key as its prefix) and
    refuses one that declares it already ("failed to create a new XML namespace")."""
    root = ET.fromstring(text)  # noqa: S314 - our own output
    for element in root.iter():
        if element.tag.startswith(f"{{{METADATA_NS}}}"):
            element.tag = element.tag[len(METADATA_NS) + 2:]
    return ET.tostring(root, encoding="unicode")


def _restore(conn: Any, move: GuestMove, save_dir: str,
             change: Callable[[str], str]) -> str:
    """Save the guest and restore it at once with ``change(the image's definition)``; the
    image's definition (what restores it as it was). A restore that fails is retried with the
    image's own definition, and the error says so."""
    import libvirt

    dom = _lookup(conn, move.domain)
    flags = _SAVE_PAUSED if dom.state()[0] == _STATE_PAUSED else _SAVE_RUNNING
    fd, path = tempfile.mkstemp(prefix=f"{move.domain}.", suffix=".save", dir=save_dir)
    os.close(fd)
    try:
        try:
            dom.saveFlags(path, None, 0)
        except libvirt.libvirtError as exc:
            raise GuestMoveError(f"domain {move.domain!r}: saving it to move its interfaces "
                                 f"failed (it was not changed): {exc}") from exc
        try:
            saved: str = conn.saveImageGetXMLDesc(path, _XML_SECURE)
            target = change(saved)
        except (libvirt.libvirtError, HookError) as exc:
            conn.restoreFlags(path, None, flags)
            raise GuestMoveError(f"domain {move.domain!r}: reading or rewriting its saved "
                                 f"definition failed: {exc} (the guest was restored as it "
                                 "was)") from exc
        try:
            conn.restoreFlags(path, target, flags)
        except libvirt.libvirtError as exc:
            macs = ", ".join(i.mac for i in move.interfaces)
            try:
                conn.restoreFlags(path, saved, flags)
            except libvirt.libvirtError as again:
                raise GuestMoveError(
                    f"domain {move.domain!r}: interface(s) {macs}: restoring it on the new "
                    f"switch failed: {exc}; and restoring it as it was failed too: {again}; "
                    f"its saved state is kept in {path} (virsh restore {path})") from exc
            raise GuestMoveError(f"domain {move.domain!r}: interface(s) {macs}: libvirt "
                                 f"refused the new switch: {exc} (the guest was restored as "
                                 "it was)") from exc
    except BaseException:
        if os.path.exists(path) and _lookup_quiet(conn, move.domain):
            os.unlink(path)
        raise
    os.unlink(path)
    return saved


def _lookup_quiet(conn: Any, name: str) -> bool:
    """Whether ``name`` runs (so its save image is no longer needed)."""
    try:
        return bool(_lookup(conn, name).isActive())
    except Exception:
        return False
