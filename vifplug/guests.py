"""Move running guests' interfaces to another switch in place, through libvirt.

When a host's network map changes how a network is switched (``red`` from a Linux bridge to OVS
``br-int`` with VLAN 100, or back), every running guest with an interface on that network must
follow: its TAP moves to the new switch and libvirt's live XML must say so (a later unplug or
live migration reads it). This module does that through libvirt only, never by changing the host
behind libvirt's back:

- :func:`plan_moves` (pure): for each guest's domain XML, the interfaces on the moving networks
  and what they become — :func:`vifplug.hook.rewrite`, the migration hook's own rewrite, limited
  to those networks — and how libvirt can apply it (:data:`UPDATE`, :data:`HYBRID` or
  :data:`RESTORE`).
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

Unless asked for that save and restore (``hybrid=False``), a move from a Linux bridge to OVS
takes the **hybrid path** instead (:data:`HYBRID`), with no pause at all: vifplug plugs the
interface's own ``qbr``/``qvb``/``qvo`` (the OVS port on the new OVS bridge, with the network's
VLAN and the guest's interfaceid, MAC and UUID in ``external_ids``: what ``vifplug plug`` makes
for an ``ovs`` VIF with ``plug: hybrid``), then re-points the running interface from the old
Linux bridge to its ``qbr`` (a Linux bridge → Linux bridge update, which libvirt does live). The
live XML is then the hybrid path's (``<source bridge='qbr…'/>``), the persistent definition the
native OVS one (``<virtualport>``: the next start on this host). Moving back is a device update
again (``qbr…`` → the Linux bridge), after which the ``qbr``/``qvb``/``qvo`` vifplug derives for
that interface go.

libvirt is reached read-write here only; the hook never calls into libvirt.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from vifplug.errors import VifplugError
from vifplug.hook import HYBRID_ATTRIBUTE, HookError, parse_domain, rewrite
from vifplug.netmap import NetworkMap
from vifplug.spec import METADATA_NS, METADATA_PREFIX

if TYPE_CHECKING:
    from vifplug.host import Host
    from vifplug.model import OvsVif

__all__ = [
    "HYBRID",
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
    "plug_hybrid_paths",
    "read_guests",
    "refuse_guests",
]

#: The move is a device update per interface (``virDomainUpdateDeviceFlags``, AFFECT_LIVE).
UPDATE: Literal["update"] = "update"
#: The move is a save and an immediate restore with the rewritten definition.
RESTORE: Literal["restore"] = "restore"
#: The move plugs each interface's hybrid path (qbr, veth, OVS port) and updates the interface
#: live onto its qbr: no pause.
HYBRID: Literal["hybrid"] = "hybrid"
Method = Literal["update", "restore", "hybrid"]
#: The VIF id of a hybrid path made for an interface that carries no UUID interfaceid:
#: ``uuid5(HYBRID_NAMESPACE, MAC)``, so the names are the same each time.
HYBRID_NAMESPACE = uuid.UUID("5d0f2c1e-7c55-4f4e-9a59-7669667071a1")

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
    #: The ``<interface>`` as it is live now, and as it is to be (the hook's rewrite; for the
    #: hybrid path, the live interface on its ``qbr``).
    old_xml: str
    new_xml: str
    #: The hybrid path to plug before the update (:data:`HYBRID`).
    plug: OvsVif | None = None
    #: The hybrid path to remove after the move (the interface leaves its ``qbr``).
    unplug: OvsVif | None = None


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
    #: The domain's UUID (``vm-uuid`` of the OVS ports the hybrid path makes).
    uuid: str = ""

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
               networks: Collection[str] | None = None,
               hybrid: bool = False) -> list[GuestMove]:
    """What moving from ``old_map`` to ``new_map`` changes in each guest (pure).

    Only interfaces on ``networks`` (default: :func:`moving_networks`) are rewritten, for
    ``new_map``, by :func:`vifplug.hook.rewrite` — so an interface belongs to a network by the
    hook's rules (vifplug's metadata by MAC, else a ``<source bridge>`` that names a network of
    ``new_map``), and is rewritten exactly as an incoming migration would be. Guests with nothing
    to change are left out. Raises :class:`GuestMoveError` naming the domain when a guest's
    interface is on a network ``new_map`` lacks.

    ``hybrid``: a Linux-bridge interface moving to OVS takes the hybrid path (:data:`HYBRID`)
    when every other interface of the guest can be updated live; otherwise the guest is saved
    and restored (:data:`RESTORE`). Either way, an interface leaving the ``qbr`` vifplug
    derives for it has that hybrid path removed after the move."""
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
        interfaces = [_leaving_hybrid(m, old_root) for m in
                      _changed_interfaces(old_root, new_root)]
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
        if method == RESTORE and hybrid:
            bridged = [_onto_hybrid(m, old_root, old_map) for m in interfaces]
            if all(m.plug is not None or live_updatable(m.old_xml, m.new_xml) for m in bridged):
                method, interfaces = HYBRID, bridged
                metadata = (old_meta, _mark_hybrid(new_root, bridged))
        moves.append(GuestMove(guest.name, tuple(interfaces), method, new_live, metadata,
                               config, (old_root.findtext("uuid") or "").strip().lower()))
    return moves


def _mark_hybrid(root: ET.Element, moves: Sequence[InterfaceMove]) -> str:
    """vifplug's metadata of ``root`` with ``hybrid="qbr…"`` on the entry of each interface
    moved onto its hybrid path: the qemu hook's ``release`` removes that path when the guest
    stops or leaves (HOOK_CONTRACT.md)."""
    for move in moves:
        entry = _entry(root, move.mac)
        if move.plug is not None and entry is not None:
            entry.set(HYBRID_ATTRIBUTE, move.plug.qbr_name)
    text = _metadata_text(root)
    assert text is not None  # noqa: S101 - the rewrite made the entries
    return text


def hybrid_vif(mac: str, network: str, interfaceid: str | None, ovs_bridge: str, *,
               vlan: int | None = None, trunk: tuple[int, ...] | None = None,
               mtu: int | None = None) -> OvsVif:
    """The ``ovs`` VIF (``plug: hybrid``) whose host side a hybrid move makes for an interface:
    its id is the interface's interfaceid when that is a UUID (the names nova derives from a
    port id), else ``uuid5(HYBRID_NAMESPACE, MAC)``."""
    from vifplug.model import OvsVif

    vif_id = _uuid(interfaceid) or str(uuid.uuid5(HYBRID_NAMESPACE, mac.lower()))
    data: dict[str, Any] = {
        "id": vif_id, "vif_type": "ovs", "mac": mac, "plug": "hybrid",
        "network": {"name": network, "bridge": ovs_bridge},
        "ovs": {"interface_id": _uuid(interfaceid) or vif_id}}
    if vlan is not None:
        data["network"]["vlan"] = vlan
    if trunk:
        data["network"]["trunk"] = list(trunk)
    if mtu is not None:
        data["mtu"] = mtu
    return OvsVif.model_validate(data)


def _uuid(text: str | None) -> str | None:
    try:
        return str(uuid.UUID(text)) if text else None
    except ValueError:
        return None


def _entry(root: ET.Element, mac: str) -> ET.Element | None:
    for entry in root.iterfind(f"metadata/{_LIST_TAG}/{{{METADATA_NS}}}interface"):
        if entry.get("mac", "").lower() == mac:
            return entry
    return None


def _onto_hybrid(move: InterfaceMove, old_root: ET.Element,
                 old_map: NetworkMap) -> InterfaceMove:
    """``move`` by the hybrid path, when it is a plain Linux-bridge interface moving to an OVS
    virtualport; else ``move`` as it is."""
    old, new = ET.fromstring(move.old_xml), ET.fromstring(move.new_xml)  # noqa: S314
    port = _port(new)
    if (old.get("type") != "bridge" or _port(old) is not None or _vlan(old) is not None
            or new.get("type") != "bridge" or port is None or port[0] != "openvswitch"):
        return move
    bridge = _bridge(new)
    if bridge is None:
        return move
    vlan = _vlan(new)
    tags = tuple(int(tag) for tag in vlan[1]) if vlan is not None else ()
    mtu = new.find("mtu")
    size = mtu.get("size") if mtu is not None else None
    vif = hybrid_vif(move.mac, move.network, dict(port[1]).get("interfaceid"), bridge,
                     vlan=tags[0] if tags and vlan is not None and vlan[0] != "yes" else None,
                     trunk=tags if vlan is not None and vlan[0] == "yes" else None,
                     mtu=int(size) if size is not None and size.isdigit() else None)
    onto = ET.fromstring(move.old_xml)  # noqa: S314 - our own output
    source = onto.find("source")
    assert source is not None  # noqa: S101 - _bridge(new) and type='bridge' above
    source.set("bridge", vif.qbr_name)
    return move._replace(new_xml=_xml(onto), plug=vif)


def _leaving_hybrid(move: InterfaceMove, old_root: ET.Element) -> InterfaceMove:
    """``move`` with the hybrid path to remove after it, when the interface leaves the ``qbr``
    vifplug derives for it (from its interfaceid, else its MAC)."""
    old, new = ET.fromstring(move.old_xml), ET.fromstring(move.new_xml)  # noqa: S314
    qbr = _bridge(old)
    if qbr is None or not qbr.startswith("qbr") or _bridge(new) == qbr or _port(old):
        return move
    entry = _entry(old_root, move.mac)
    interfaceid = entry.get("interfaceid") if entry is not None else None
    vif = hybrid_vif(move.mac, move.network or "unknown", interfaceid, "br-int")
    if vif.qbr_name != qbr:
        return move  # not the qbr vifplug would make for this interface: not ours to remove
    return move._replace(unplug=vif)


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
                before_rollback: Callable[[], None] | None = None,
                host: Host | None = None, plugged: bool = False) -> list[GuestMove]:
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
    old map back at the qemu hook's path there: libvirt runs the hook on ``restore begin``).
    ``host``: where hybrid paths are plugged and unplugged (:data:`HYBRID` moves, and moves
    off a hybrid path); moves planned without ``hybrid`` and off no ``qbr`` need none.
    ``plugged``: the hybrid paths are plugged already (:func:`plug_hybrid_paths`; undoing that
    is the caller's)."""
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
                          done=done, host=None if plugged and move.method == HYBRID else host,
                          unplug_host=host)
            except (libvirt.libvirtError, GuestMoveError, VifplugError) as exc:
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
              save_dir: str, done: list[_Applied], host: Host | None,
              unplug_host: Host | None) -> None:
    """One guest's move; ``host``: where its hybrid paths are plugged (None: they are
    already), ``unplug_host``: where the hybrid paths it leaves are removed."""
    import libvirt

    dom = _lookup(conn, move.domain)
    leaving = [i for i in move.interfaces if i.unplug is not None]
    if leaving and unplug_host is None:
        raise GuestMoveError(f"domain {move.domain!r}: interface {leaving[0].mac} leaves a "
                             "hybrid path (qbr): removing it needs the host (move_guests(host=))")
    if move.method in (UPDATE, HYBRID):
        if host is not None:
            _plug_hybrid(host, move, [i.plug for i in move.interfaces if i.plug is not None],
                         done)
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
    for iface in leaving:
        assert unplug_host is not None  # noqa: S101 - checked above
        assert iface.unplug is not None  # noqa: S101 - leaving has them
        _unplug_hybrid(unplug_host, move, iface.unplug, done)


def plug_hybrid_paths(moves: Sequence[GuestMove], host: Host) -> Callable[[], None]:
    """Plug the hybrid paths of every :data:`HYBRID` move (one batch per guest, rolled back
    as a whole on failure: :class:`GuestMoveError`), ready when this returns; what removes
    them again. A switch transition plugs them while the guests still run on the old switch,
    before the uplink moves, so the outage is only the uplink's move and the updates."""
    done: list[_Applied] = []
    try:
        for move in moves:
            vifs = [i.plug for i in move.interfaces if i.plug is not None]
            if move.method == HYBRID and vifs:
                _plug_hybrid(host, move, vifs, done)
    except GuestMoveError:
        _rollback(done)
        raise

    def unplug() -> None:
        failures = _rollback(done)
        done.clear()
        if failures:
            raise GuestMoveError(f"removing hybrid paths failed: {'; '.join(failures)}")
    return unplug


def _plug_hybrid(host: Host, move: GuestMove, vifs: Sequence[OvsVif],
                 done: list[_Applied]) -> None:
    """Plug ``vifs``' hybrid paths, one batch (rolled back on failure; ready when this
    returns)."""
    from vifplug.driver import GenericVIFDriver

    if not vifs:
        return
    driver = GenericVIFDriver()
    try:
        driver.plug_many(vifs, host, instance_uuid=move.uuid or None)
    except VifplugError as exc:
        paths = ", ".join(f"{v.mac}: {v.qbr_name}, {v.qvo_name} on {v.network.bridge}"
                          for v in vifs)
        raise GuestMoveError(f"domain {move.domain!r}: plugging the hybrid path(s) ({paths}) "
                             f"failed: {exc}") from exc

    def undo() -> None:
        driver.unplug_many(vifs, host)
    done.append(_Applied(f"{move.domain} hybrid path(s) "
                         f"{', '.join(v.qbr_name for v in vifs)}", undo))


def _unplug_hybrid(host: Host, move: GuestMove, vif: OvsVif, done: list[_Applied]) -> None:
    """Remove the hybrid path ``vif`` the interface left, unless a device of another is on its
    qbr (then it is not only this interface's: left as it is)."""
    from vifplug.driver import GenericVIFDriver

    links = {link.index: link for link in host.netlink.links()}
    qbr = next((link for link in links.values() if link.name == vif.qbr_name), None)
    if qbr is None:
        return
    others = [link.name for link in links.values()
              if link.master == qbr.index and link.name != vif.qvb_name]
    if others:
        return
    driver = GenericVIFDriver()
    driver.unplug(vif, host)
    done.append(_Applied(f"{move.domain} hybrid path {vif.qbr_name} removed",
                         lambda: _replug(driver, vif, host, move.uuid)))


def _replug(driver: Any, vif: OvsVif, host: Host, instance: str) -> None:
    driver.plug(vif, host, instance_uuid=instance or None)


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
