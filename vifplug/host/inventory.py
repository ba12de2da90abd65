"""The edge of ``vifplug audit``: read the host and libvirt into :mod:`vifplug.audit`'s values.

- net devices: one netlink dump (the Host's namespace);
- OVS: one ``ovs-vsctl list`` of Bridge, Port and Interface (as ``vifplug host show`` reads
  them); no OVSDB socket means OVS is not audited;
- vifplug's lock files of the Host's scope, each with its mtime and whether a plug or unplug
  holds it now (a non-blocking shared flock, released at once);
- the NIC pools' state file (:mod:`vifplug.pools`), when it exists: its holdings;
- libvirt: a **read-only** connection, every domain (running and defined), each one's live XML
  (running) or persistent XML.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vifplug.audit import (
    OWNER_KEY,
    Domain,
    HostLink,
    Inventory,
    LockFile,
    OvsInterface,
    PoolHolding,
)
from vifplug.errors import VifplugError
from vifplug.host.ovsjson import is_set, optional, ovsdb_map, read_tables, uuids

if TYPE_CHECKING:
    from vifplug.host import Host

__all__ = ["LibvirtError", "read_domains", "read_inventory", "read_locks", "read_ovs_interfaces",
           "read_pools"]


class LibvirtError(VifplugError):
    """libvirt cannot be reached or read."""


def read_inventory(host: Host, lock_dir: Path, *, pools: str | None = None) -> Inventory:
    """The host's devices, OVS interfaces and vifplug lock files (of the Host's scope), and
    the NIC pools' holdings when their state file (``pools``, else the default) exists."""
    links = host.netlink.links()
    names = {link.index: link.name for link in links}
    found = tuple(HostLink(link.name, link.kind, link.index,
                           names.get(link.master) if link.master else None,
                           names.get(link.link) if link.kind == "veth" and link.link else None,
                           link.mtu, link.port_isolated)
                  for link in links)
    rows = read_ovs_interfaces(host.ovsdb_url)
    ovs, bridges = (None, ()) if rows is None else rows
    holdings, pools_path = read_pools(pools)
    return Inventory(scope=host.scope, links=found, ovs=ovs, ovs_bridges=bridges,
                     locks=read_locks(lock_dir, host.scope), pools=holdings,
                     pools_path=pools_path)


def read_pools(path: str | None = None) -> tuple[tuple[PoolHolding, ...] | None, str | None]:
    """The holdings of the NIC pool state file and its path; (None, None) when it does not
    exist. A file that is not a pool state raises :class:`vifplug.errors.VifplugError` naming
    it (``vifplug pools rebuild`` makes it again)."""
    from vifplug import pools

    where = pools.state_path(path)
    if not os.path.exists(where):
        return None, None
    state = pools.load(where)
    return tuple(PoolHolding(network, nic, holder.domain, holder.mac)
                 for network, nics in sorted(state.networks.items())
                 for nic, holders in sorted(nics.items())
                 for holder in holders), where


def read_locks(lock_dir: Path, scope: str) -> tuple[LockFile, ...]:
    """vifplug's lock files of ``scope`` in ``lock_dir`` (none when it does not exist)."""
    found = []
    prefix = f"{scope}-"
    try:
        entries = sorted(lock_dir.iterdir())
    except FileNotFoundError:
        return ()
    for path in entries:
        name = path.name
        if not (name.startswith(prefix) and name.endswith(".lock")):
            continue
        vif_id = name[len(prefix):-len(".lock")]
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            mtime = os.fstat(fd).st_mtime
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                held = False
                fcntl.flock(fd, fcntl.LOCK_UN)
            except BlockingIOError:
                held = True
        finally:
            os.close(fd)
        found.append(LockFile(str(path), scope, vif_id, mtime, held))
    return tuple(found)


_COLUMNS = {
    "Bridge": ("_uuid", "name", "ports"),
    "Port": ("_uuid", "name", "interfaces", "tag", "trunks", "external_ids"),
    "Interface": ("_uuid", "name", "type", "external_ids", "mtu_request"),
}


def read_ovs_interfaces(url: str) -> tuple[tuple[OvsInterface, ...], tuple[str, ...]] | None:
    """Every OVS interface (with its port's tag and trunks and its bridge) and the bridge
    names, in one ``ovs-vsctl`` call; None when there is no OVSDB (a ``unix:`` socket that does
    not exist, or no ovs-vsctl)."""
    tables = read_tables(url, _COLUMNS)
    if tables is None:
        return None
    return ovs_interfaces(tables)


def ovs_interfaces(tables: dict[str, list[dict[str, Any]]]
                   ) -> tuple[tuple[OvsInterface, ...], tuple[str, ...]]:
    """:func:`read_ovs_interfaces` from ``ovs-vsctl --format=json --data=json list`` rows."""
    port_bridge: dict[str, str] = {}
    for row in tables["Bridge"]:
        for uuid in uuids(row["ports"]):
            port_bridge[uuid] = row["name"]
    iface_port: dict[str, dict[str, Any]] = {}
    for row in tables["Port"]:
        for uuid in uuids(row["interfaces"]):
            iface_port[uuid] = row
    found = []
    for row in tables["Interface"]:
        uuid = row["_uuid"][1]
        port = iface_port.get(uuid)
        ids = ovsdb_map(row["external_ids"])
        port_ids = ovsdb_map(port["external_ids"]) if port is not None else {}
        trunks: Any = port["trunks"] if port is not None else ["set", []]
        mtu = optional(row["mtu_request"])
        tag = optional(port["tag"]) if port is not None else None
        found.append(OvsInterface(
            name=row["name"],
            bridge=port_bridge.get(port["_uuid"][1]) if port is not None else None,
            uuid=uuid, type=row["type"], external_ids=tuple(sorted(ids.items())),
            mtu_request=mtu, tag=tag,
            trunks=tuple(sorted(trunks[1] if is_set(trunks) else [trunks])),
            host_owned=OWNER_KEY in ids or OWNER_KEY in port_ids))
    return tuple(found), tuple(sorted(row["name"] for row in tables["Bridge"]))






def read_domains(uri: str | None) -> tuple[Domain, ...]:
    """Every domain of libvirt at ``uri`` (running: live XML; defined: persistent XML), over a
    read-only connection."""
    from vifplug.audit import domain_from_xml
    from vifplug.hook import HookError

    try:
        import libvirt
    except ImportError as exc:
        raise LibvirtError(f"cannot read libvirt's domains: the libvirt Python binding is not "
                           f"installed ({exc})") from None
    libvirt.registerErrorHandler(lambda *_: None, None)  # no libvirt chatter on stderr
    try:
        conn = libvirt.openReadOnly(uri)
    except libvirt.libvirtError as exc:
        raise LibvirtError(f"cannot connect to libvirt ({uri or 'default URI'}): "
                           f"{_line(exc)}") from None
    try:
        found: list[Domain] = []
        for dom in conn.listAllDomains(0):
            try:
                running = bool(dom.isActive())
                found.append(domain_from_xml(dom.XMLDesc(0), running=running))
            except libvirt.libvirtError as exc:
                if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    continue  # gone while we read: nothing of it to compare
                raise LibvirtError(f"cannot read a domain from libvirt: {_line(exc)}") from None
            except HookError as exc:
                raise LibvirtError(f"cannot read domain {dom.name()}'s XML: {exc}") from None
        return tuple(sorted(found, key=lambda d: (d.name, d.uuid)))
    except libvirt.libvirtError as exc:
        raise LibvirtError(f"cannot list libvirt's domains: {_line(exc)}") from None
    finally:
        conn.close()


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split())

