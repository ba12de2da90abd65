"""``vifplug audit``: this host's VIF plumbing against libvirt's domains and the network map.

The matching is one pure function, :func:`audit`, over immutable values: an :class:`Inventory`
of the host (net devices, OVS interfaces, vifplug's lock files), the :class:`Domain` values
read from libvirt, and the network map. It returns :class:`Finding` values, each with the
evidence that proves it. Reading the host and libvirt is the edge's
(:mod:`vifplug.host.inventory`); printing is :func:`report_text` and :func:`report_json`.

The rules (docs/src/audit.md says the same for operators):

- **Candidates**: net devices whose name is vifplug-shaped (``tap``/``qbr``/``qvb``/``qvo``/
  ``vhu`` + at least one character), and OVS interfaces that are vifplug-shaped by name or carry
  a VM port's marks (``external_ids`` ``attached-mac``, ``vm-uuid`` or ``vm-id``: what vifplug,
  os-vif and libvirt write on a guest's port; ``iface-id`` alone is not one, agents put it on
  their own ports). OVS rows marked ``vifplug-owner=host`` (``vifplug host apply``'s networks)
  are never candidates. A device and an OVS interface of one name are one object.
- **Claimed**: a domain (running or only defined) claims an object when one of its interfaces
  names it (``<target dev>``, ``<source bridge>``, ``<source dev>``), names a vifplug-shaped
  device with the same id part (``qbrX`` claims ``qvbX``, ``qvoX``, ``tapX``), or has the MAC
  (``attached-mac``) or the OVS interfaceid (``iface-id``, from the virtualport or vifplug's
  metadata) the OVS interface carries.
- **orphan**: an unclaimed object with a mark — its OVS interface's VM port marks, a marked OVS
  interface of the same id part (``qvoX`` marks ``qbrX``, ``qvbX``), or a vifplug lock file of
  this scope for a VIF whose id starts with the id part. When the ``vm-uuid``/``vm-id`` names an
  existing domain (whose interfaces no longer match), the finding names that domain and ``gc``
  leaves it alone.
- **foreign**: an unclaimed vifplug-shaped object with no mark: reported, never touched.
- **missing**: a running domain's interface listed in vifplug's metadata whose host side is
  gone: its target device, its source bridge (Linux or OVS), for a ``qbrX`` source ``qvbX`` and
  ``qvoX`` (and ``qvoX``'s OVS port), for a virtualport its OVS port, for ``direct`` its NIC.
- **mismatch**: a running domain's vifplug interface whose OVS port differs from what the map's
  network and the domain say: the bridge, the access tag and trunks (OVS: the map's; OVN: none),
  ``mtu_request`` (the interface's ``<mtu size>``, when it has one), ``iface-id`` (the
  interface's interfaceid, when it has one).
- **NIC pools** (the state file :mod:`vifplug.pools` keeps, when there is one): a holding whose
  guest interface does not run on that NIC — no running domain of that name, or none of its
  interfaces has that MAC on that NIC — is an **orphan** (a stale allocation that keeps a
  passthrough NIC from the next guest); a running domain's vifplug interface on a NIC of its
  network's pool (by the map) that the state file does not record is a **mismatch** (the next
  allocation could hand that NIC out again). Their subject is ``pools.json:<network>/<nic>/<mac>``:
  not a device; ``gc`` releases or records them in the state file, never a device.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from vifplug.spec import METADATA_NS

__all__ = [
    "FORMAT",
    "PREFIXES",
    "VM_MARKS",
    "AuditResult",
    "Domain",
    "DomainInterface",
    "Finding",
    "HostLink",
    "Inventory",
    "LockFile",
    "OvsInterface",
    "PoolHolding",
    "audit",
    "domain_from_xml",
    "id_part",
    "report_json",
    "report_text",
]

#: The JSON report's format number (docs/src/audit.md).
FORMAT = 1
#: Name prefixes of the devices vifplug, nova, os-vif and the Neutron agents derive from a port id.
PREFIXES = ("tap", "qbr", "qvb", "qvo", "vhu")
#: ``external_ids`` keys that mark an OVS interface as a guest's port (vifplug and os-vif write
#: ``vm-uuid``, libvirt ``vm-id``; all three write ``attached-mac``).
VM_MARKS = ("attached-mac", "vm-uuid", "vm-id")
#: ``external_ids`` key of the rows ``vifplug host apply`` owns (vifplug.hostnet.OWNER_KEY).
OWNER_KEY = "vifplug-owner"

Kind = Literal["orphan", "missing", "mismatch", "foreign"]
KINDS: tuple[Kind, ...] = ("orphan", "missing", "mismatch", "foreign")


# --- what the host has -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HostLink:
    """A net device."""

    name: str
    kind: str | None = None
    index: int = 0
    #: Its master's name (a Linux bridge), if any.
    master: str | None = None
    #: A veth's peer's name, when it is in the same namespace.
    peer: str | None = None
    mtu: int | None = None
    #: As a Linux bridge port: whether it is isolated; None when it is none.
    isolated: bool | None = None

    def evidence(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "index": self.index,
                "master": self.master, "peer": self.peer, "mtu": self.mtu,
                "isolated": self.isolated}


@dataclass(frozen=True, slots=True)
class OvsInterface:
    """An OVS Interface with its Port's VLAN columns (a VM port has one interface)."""

    name: str
    bridge: str | None = None
    uuid: str = ""
    type: str = ""
    external_ids: tuple[tuple[str, str], ...] = ()
    mtu_request: int | None = None
    tag: int | None = None
    trunks: tuple[int, ...] = ()
    #: ``vifplug-owner=host`` on the Port or the Interface: a host network's row.
    host_owned: bool = False

    @property
    def ids(self) -> dict[str, str]:
        return dict(self.external_ids)

    @property
    def vm_marks(self) -> dict[str, str]:
        ids = self.ids
        return {key: ids[key] for key in VM_MARKS if ids.get(key)}

    def evidence(self) -> dict[str, Any]:
        return {"name": self.name, "bridge": self.bridge, "uuid": self.uuid, "type": self.type,
                "external_ids": dict(sorted(self.external_ids)),
                "mtu_request": self.mtu_request, "tag": self.tag, "trunks": list(self.trunks)}


@dataclass(frozen=True, slots=True)
class LockFile:
    """One of vifplug's per-VIF lock files (``<scope>-<vif id>.lock``)."""

    path: str
    scope: str
    vif_id: str
    #: Last modification, seconds since the epoch.
    mtime: float = 0.0
    #: A plug or unplug holds it now.
    held: bool = False

    def evidence(self) -> dict[str, Any]:
        return {"path": self.path, "vif_id": self.vif_id, "mtime": self.mtime,
                "held": self.held}


@dataclass(frozen=True, slots=True)
class PoolHolding:
    """One holding of vifplug's NIC pool state file: a guest interface holds a pool NIC."""

    network: str
    nic: str
    domain: str
    mac: str

    @property
    def subject(self) -> str:
        return f"{POOL_SUBJECT}{self.network}/{self.nic}/{self.mac}"

    def evidence(self) -> dict[str, Any]:
        return {"network": self.network, "nic": self.nic, "domain": self.domain,
                "mac": self.mac}


#: How the subject of a pool finding begins (never a device name: ``:`` and ``/`` are not in one).
POOL_SUBJECT = "pools.json:"


@dataclass(frozen=True, slots=True)
class Inventory:
    """What the host (one scope: the host's namespace, or one netns) has."""

    #: ``host`` or ``netns-<name>`` (as in lock file names).
    scope: str = "host"
    links: tuple[HostLink, ...] = ()
    #: None: no OVSDB here (OVS is not audited).
    ovs: tuple[OvsInterface, ...] | None = ()
    #: OVS bridge names.
    ovs_bridges: tuple[str, ...] = ()
    locks: tuple[LockFile, ...] = ()
    #: The NIC pools' holdings; None: no pool state file (pools are not audited).
    pools: tuple[PoolHolding, ...] | None = None
    #: The pool state file's path, when it was read.
    pools_path: str | None = None


# --- what libvirt has ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DomainInterface:
    """One ``<interface>`` of a domain, with vifplug's metadata entry for it."""

    mac: str
    type: str = "bridge"
    source_bridge: str | None = None
    source_dev: str | None = None
    target: str | None = None
    virtualport: str | None = None
    #: The interfaceid: the virtualport's, else the metadata's.
    interfaceid: str | None = None
    mtu: int | None = None
    #: The network vifplug's metadata gives it; None: not a vifplug interface.
    network: str | None = None
    #: ``<port isolated='yes'/>``: its TAP must be an isolated bridge port.
    isolated: bool = False

    def names(self) -> tuple[str, ...]:
        return tuple(n for n in (self.target, self.source_bridge, self.source_dev) if n)

    def evidence(self) -> dict[str, Any]:
        return {"mac": self.mac, "type": self.type, "source_bridge": self.source_bridge,
                "source_dev": self.source_dev, "target": self.target,
                "virtualport": self.virtualport, "interfaceid": self.interfaceid,
                "mtu": self.mtu, "network": self.network, "isolated": self.isolated}


@dataclass(frozen=True, slots=True)
class Domain:
    name: str
    uuid: str
    running: bool
    interfaces: tuple[DomainInterface, ...] = ()

    def ref(self) -> dict[str, Any]:
        return {"name": self.name, "uuid": self.uuid, "running": self.running}


_META = f"{{{METADATA_NS}}}"


def domain_from_xml(xml: str | bytes, *, running: bool) -> Domain:
    """A :class:`Domain` from its XML (the live XML for a running domain). Pure."""
    from vifplug.hook import parse_domain

    root = parse_domain(xml)
    meta: dict[str, ET.Element[str]] = {}
    listing = root.find(f"metadata/{_META}interfaces")
    if listing is not None:
        for item in listing.iterfind(f"{_META}interface"):
            meta[item.get("mac", "").lower()] = item
    interfaces = []
    for iface in root.iterfind("devices/interface"):
        mac_el = iface.find("mac")
        mac = (mac_el.get("address") or "").lower() if mac_el is not None else ""
        source = iface.find("source")
        target = iface.find("target")
        port = iface.find("virtualport")
        params = port.find("parameters") if port is not None else None
        mtu_el = iface.find("mtu")
        port_el = iface.find("port")
        entry = meta.get(mac)
        interfaceid = (params.get("interfaceid") if params is not None else None) or (
            entry.get("interfaceid") if entry is not None else None)
        mtu = mtu_el.get("size") if mtu_el is not None else None
        interfaces.append(DomainInterface(
            mac=mac, type=iface.get("type", ""),
            source_bridge=source.get("bridge") if source is not None else None,
            source_dev=source.get("dev") if source is not None else None,
            target=target.get("dev") if target is not None else None,
            virtualport=port.get("type") if port is not None else None,
            interfaceid=interfaceid or None,
            mtu=int(mtu) if mtu is not None and mtu.isdigit() else None,
            network=(entry.get("network") or None) if entry is not None else None,
            isolated=port_el is not None and port_el.get("isolated") == "yes"))
    return Domain(name=root.findtext("name", ""), uuid=(root.findtext("uuid") or "").lower(),
                  running=running, interfaces=tuple(interfaces))


# --- findings --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finding:
    kind: Kind
    #: The device / OVS port name the finding is about (for missing: the interface's MAC).
    subject: str
    #: One line for people.
    summary: str
    #: The rows, devices and domain fields that prove it (JSON-ready).
    evidence: Mapping[str, Any] = field(default_factory=dict)
    #: The domain concerned, if any.
    domain: Domain | None = None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "subject": self.subject, "summary": self.summary,
                "domain": self.domain.ref() if self.domain is not None else None,
                "evidence": dict(self.evidence)}


@dataclass(frozen=True, slots=True)
class AuditResult:
    findings: tuple[Finding, ...]
    inventory: Inventory
    domains: tuple[Domain, ...]
    #: The network map's path, or None when there was none (mismatches not checked).
    map_path: str | None = None

    @property
    def clean(self) -> bool:
        return not self.findings

    def counts(self) -> dict[str, int]:
        return {kind: sum(1 for f in self.findings if f.kind == kind) for kind in KINDS}


def id_part(name: str) -> str | None:
    """The id part of a vifplug-shaped name (``qbr1234`` → ``1234``), else None."""
    if len(name) > 3 and name[:3] in PREFIXES:
        return name[3:]
    return None


class _Claims:
    """What the domains name, for finding who claims a host object."""

    def __init__(self, domains: Sequence[Domain]) -> None:
        self.names: dict[str, tuple[Domain, DomainInterface]] = {}
        self.parts: dict[str, tuple[Domain, DomainInterface]] = {}
        self.macs: dict[str, tuple[Domain, DomainInterface]] = {}
        self.ifaceids: dict[str, tuple[Domain, DomainInterface]] = {}
        self.uuids = {domain.uuid: domain for domain in domains}
        for domain in domains:
            for iface in domain.interfaces:
                pair = (domain, iface)
                for name in iface.names():
                    self.names.setdefault(name, pair)
                    part = id_part(name)
                    if part is not None:
                        self.parts.setdefault(part, pair)
                if iface.mac:
                    self.macs.setdefault(iface.mac, pair)
                if iface.interfaceid:
                    self.ifaceids.setdefault(iface.interfaceid.lower(), pair)

    def claim(self, name: str, ovs: OvsInterface | None) -> tuple[str, Domain] | None:
        """(why, domain) when a domain's interface claims the object."""
        if name in self.names:
            domain, iface = self.names[name]
            return f"domain {domain.name} interface {iface.mac} names {name}", domain
        part = id_part(name)
        if part is not None and part in self.parts:
            domain, iface = self.parts[part]
            return (f"domain {domain.name} interface {iface.mac} names "
                    f"{', '.join(iface.names())} (same id part {part})"), domain
        if ovs is not None:
            ids = ovs.ids
            mac = ids.get("attached-mac", "").lower()
            if mac and mac in self.macs:
                domain, _ = self.macs[mac]
                return f"domain {domain.name} has an interface with MAC {mac}", domain
            ifaceid = ids.get("iface-id", "").lower()
            if ifaceid and ifaceid in self.ifaceids:
                domain, iface = self.ifaceids[ifaceid]
                return (f"domain {domain.name} interface {iface.mac} has interfaceid "
                        f"{ifaceid}"), domain
        return None


def audit(inventory: Inventory, domains: Sequence[Domain],
          networks: Mapping[str, Any] | None = None, *,
          map_path: str | None = None) -> AuditResult:
    """Match the host against the domains and the map; the findings, in a stable order
    (orphan, missing, mismatch, foreign; by subject). ``networks``: the network map's
    networks by name (:class:`vifplug.netmap.NetworkMap` ``.networks``; a network with a
    priority list may map to the tuple of its options, :meth:`NetworkMap.definitions`: a port
    is compared with the OVS/OVN option on its bridge); None: no map, so no mismatch is looked
    for. Pure."""
    claims = _Claims(domains)
    links = {link.name: link for link in inventory.links}
    ovs = {} if inventory.ovs is None else {
        row.name: row for row in inventory.ovs if not row.host_owned}
    host_owned = {row.name for row in inventory.ovs or () if row.host_owned}
    locks = [lock for lock in inventory.locks if lock.scope == inventory.scope]
    findings = _unclaimed(claims, links, ovs, host_owned, locks)
    if inventory.pools is not None:
        findings += _pool_findings(inventory.pools, domains, networks)
    for domain in domains:
        if not domain.running:
            continue
        for iface in domain.interfaces:
            if iface.network is None:
                continue
            absent = _absent(iface, links, ovs, inventory)
            if absent:
                findings.append(Finding(
                    "missing", iface.mac,
                    f"domain {domain.name} interface {iface.mac} (network {iface.network}): "
                    f"{', '.join(absent)} gone", {"interface": iface.evidence(),
                                                   "absent": absent}, domain))
            if networks is not None and inventory.ovs is not None:
                finding = _mismatch(domain, iface, networks, ovs)
                if finding is not None:
                    findings.append(finding)
    order = {kind: n for n, kind in enumerate(KINDS)}
    findings.sort(key=lambda f: (order[f.kind], f.subject))
    return AuditResult(tuple(findings), inventory, tuple(domains), map_path)


def _unclaimed(claims: _Claims, links: Mapping[str, HostLink], ovs: Mapping[str, OvsInterface],
               host_owned: set[str], locks: Sequence[LockFile]) -> list[Finding]:
    """The orphan and foreign findings: candidates no domain claims."""
    marked_parts: dict[str, str] = {}
    for port in ovs.values():
        part = id_part(port.name)
        if part is not None and port.vm_marks:
            key, value = next(iter(port.vm_marks.items()))
            marked_parts.setdefault(part, f"OVS interface {port.name} external_ids:{key}={value}")

    findings: list[Finding] = []
    candidates = sorted(
        {name for name in links if id_part(name) is not None and name not in host_owned}
        | {name for name, row in ovs.items() if id_part(name) is not None or row.vm_marks})
    for name in candidates:
        link, row = links.get(name), ovs.get(name)
        if claims.claim(name, row) is not None:
            continue
        evidence: dict[str, Any] = {}
        if link is not None:
            evidence["device"] = link.evidence()
        if row is not None:
            evidence["ovs"] = row.evidence()
        marks = _marks(name, row, marked_parts, locks)
        what = _what(link, row)
        if not marks:
            findings.append(Finding("foreign", name, f"{what} {name}: vifplug-shaped name, no "
                                    "vifplug/os-vif/libvirt marks, no domain has it: left "
                                    "alone", evidence))
            continue
        evidence["marks"] = marks
        owner = None
        if row is not None:
            for key in ("vm-uuid", "vm-id"):
                uuid = row.ids.get(key, "").lower()
                if uuid in claims.uuids:
                    owner = claims.uuids[uuid]
                    evidence["domain_by"] = f"external_ids:{key}={uuid}"
                    break
        if owner is not None:
            summary = (f"{what} {name}: its {evidence['domain_by']} names domain {owner.name}, "
                       "but no interface of it has this port (gc leaves it: its domain exists)")
        else:
            summary = f"{what} {name}: no domain has it ({marks[0]})"
        findings.append(Finding("orphan", name, summary, evidence, owner))
    return findings


def _what(link: HostLink | None, row: OvsInterface | None) -> str:
    if link is not None and row is not None:
        return "device and OVS port"
    if row is not None:
        return "OVS port"
    kind = link.kind if link is not None else None
    return {"bridge": "Linux bridge", "veth": "veth", "tun": "TAP"}.get(kind or "", "device")


def _marks(name: str, row: OvsInterface | None, marked_parts: Mapping[str, str],
           locks: Sequence[LockFile]) -> list[str]:
    marks = [f"external_ids:{key}={value}" for key, value in
             (row.vm_marks.items() if row is not None else ())]
    part = id_part(name)
    if part is not None:
        if part in marked_parts and not marks:
            marks.append(marked_parts[part])
        marks += [f"vifplug lock file {lock.path}" for lock in locks
                  if lock.vif_id[:len(part)] == part and len(part) >= 8]
    return marks


def _absent(iface: DomainInterface, links: Mapping[str, HostLink],
            ovs: Mapping[str, OvsInterface], inventory: Inventory) -> list[str]:
    absent: list[str] = []
    has_ovs = inventory.ovs is not None
    if iface.target and iface.type in ("bridge", "ethernet", "network", "direct") \
            and iface.target not in links:
        absent.append(f"target device {iface.target}")
    bridge = iface.source_bridge
    if bridge and iface.type in ("bridge", "network"):
        part = id_part(bridge) if bridge.startswith("qbr") else None
        if bridge not in links and not (has_ovs and bridge in inventory.ovs_bridges):
            absent.append(f"bridge {bridge}")
        if part is not None:
            absent += [f"veth {name}" for name in ("qvb" + part, "qvo" + part)
                       if name not in links]
            if has_ovs and "qvo" + part not in ovs:
                absent.append(f"OVS port qvo{part}")
    if has_ovs and iface.virtualport == "openvswitch" and iface.target \
            and iface.target not in ovs:
        absent.append(f"OVS port {iface.target}")
    if iface.type == "direct" and iface.source_dev and iface.source_dev not in links:
        absent.append(f"NIC {iface.source_dev}")
    tap = links.get(iface.target or "")
    if iface.isolated and tap is not None and tap.isolated is False:
        absent.append(f"the isolation of bridge port {tap.name} (<port isolated='yes'/>)")
    return absent


def _port_of(iface: DomainInterface, ovs: Mapping[str, OvsInterface]) -> OvsInterface | None:
    if iface.target and iface.target in ovs:
        return ovs[iface.target]
    bridge = iface.source_bridge or ""
    if bridge.startswith("qbr") and len(bridge) > 3:
        return ovs.get("qvo" + bridge[3:])
    return None


def _mismatch(domain: Domain, iface: DomainInterface, networks: Mapping[str, Any],
              ovs: Mapping[str, OvsInterface]) -> Finding | None:
    network: Any = networks.get(iface.network or "")
    port = _port_of(iface, ovs)
    if type(network) is tuple:  # a priority list (a network is a NamedTuple): the port's option
        on_ovs = [n for n in network if getattr(n, "switch", None) in ("ovs", "ovn")]
        network = next((n for n in on_ovs if port is not None and n.bridge == port.bridge),
                       on_ovs[0] if on_ovs else None)
    switch = getattr(network, "switch", None)
    if switch not in ("ovs", "ovn"):
        return None
    if port is None:
        return None
    expected: dict[str, Any] = {"bridge": network.bridge}
    if switch == "ovs":
        expected["tag"] = network.access_tag
        expected["trunks"] = list(network.trunk or ()) if network.access_tag is None else []
    else:
        expected["tag"] = None
        expected["trunks"] = []
    if iface.mtu is not None:
        expected["mtu_request"] = iface.mtu
    if iface.interfaceid:
        expected["iface-id"] = iface.interfaceid
    actual = {"bridge": port.bridge, "tag": port.tag, "trunks": sorted(port.trunks),
              "mtu_request": port.mtu_request, "iface-id": port.ids.get("iface-id")}
    differences = [{"field": key, "actual": actual[key], "expected": value}
                   for key, value in expected.items()
                   if (sorted(value) if key == "trunks" else value) != actual[key]]
    if not differences:
        return None
    said = ", ".join(f"{d['field']} {_show(d['actual'])} (expected {_show(d['expected'])})"
                     for d in differences)
    return Finding("mismatch", port.name,
                   f"OVS port {port.name} of domain {domain.name} interface {iface.mac} "
                   f"(network {iface.network}): {said}",
                   {"interface": iface.evidence(), "ovs": port.evidence(),
                    "network": {"name": iface.network, "switch": switch, **expected},
                    "differences": differences}, domain)


def _pool_findings(holdings: Sequence[PoolHolding], domains: Sequence[Domain],
                   networks: Mapping[str, Any] | None) -> list[Finding]:
    """Stale holdings (orphan) and pool NICs running guests use unrecorded (mismatch)."""
    running = {domain.name: domain for domain in domains if domain.running}
    findings = []
    recorded = set()
    for held in holdings:
        recorded.add((held.network, held.nic, held.domain, held.mac.lower()))
        domain = running.get(held.domain)
        uses = domain is not None and any(
            iface.mac == held.mac.lower() and iface.source_dev == held.nic
            for iface in domain.interfaces)
        if uses:
            continue
        why = (f"domain {held.domain} is not running" if domain is None else
               f"no interface of domain {held.domain} has MAC {held.mac} on {held.nic}")
        findings.append(Finding(
            "orphan", held.subject,
            f"pool holding {held.nic} of network {held.network} by {held.domain} "
            f"({held.mac}): {why}; it keeps the NIC from other guests",
            {"pool": held.evidence()}))
    if networks is None:
        return findings
    for domain in running.values():
        for iface in domain.interfaces:
            name, nic = iface.network or "", iface.source_dev or ""
            if iface.type != "direct" or nic not in (getattr(networks.get(name), "pool", ())
                                                     or ()):
                continue
            key = (name, nic, domain.name, iface.mac)
            if key in recorded:
                continue
            held = PoolHolding(*key)
            findings.append(Finding(
                "mismatch", held.subject,
                f"domain {domain.name} interface {iface.mac} (network {iface.network}) is on "
                f"pool NIC {iface.source_dev}, which the pool state does not record: the NIC "
                "could be handed out again",
                {"pool": held.evidence(), "interface": iface.evidence()}, domain))
    return findings


def _show(value: Any) -> str:
    if value is None or value == []:
        return "none"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


# --- reports ---------------------------------------------------------------------------------


def report_json(result: AuditResult) -> dict[str, Any]:
    """The ``--json`` report (format 1, docs/src/audit.md)."""
    inventory = result.inventory
    return {
        "format": FORMAT,
        "scope": inventory.scope,
        "clean": result.clean,
        "counts": result.counts(),
        "checked": {
            "devices": sorted(link.name for link in inventory.links
                              if id_part(link.name) is not None),
            "ovs_ports": None if inventory.ovs is None else sorted(
                row.name for row in inventory.ovs
                if not row.host_owned and (id_part(row.name) is not None or row.vm_marks)),
            "locks": [lock.evidence() for lock in inventory.locks],
            "pools": None if inventory.pools is None else {
                "path": inventory.pools_path,
                "holdings": [held.evidence() for held in inventory.pools]},
            "domains": [domain.ref() for domain in result.domains],
            "network_map": result.map_path,
        },
        "findings": [finding.to_json() for finding in result.findings],
    }


def report_text(result: AuditResult) -> str:
    """The report for people: one line per finding, then a summary line."""
    lines = [f"{finding.kind:<8} {finding.summary}" for finding in result.findings]
    data = report_json(result)
    checked = data["checked"]
    ports = ("OVS not audited (no OVSDB)" if checked["ovs_ports"] is None
             else f"{len(checked['ovs_ports'])} OVS ports")
    scope = f" in {result.inventory.scope}" if result.inventory.scope != "host" else ""
    what = (f"{len(checked['devices'])} vifplug-shaped devices, {ports}{scope}, "
            f"{len(result.domains)} domains")
    if result.inventory.pools is not None:
        what += f", {len(result.inventory.pools)} pool holdings"
    if result.map_path is None:
        what += ", no network map (mismatches not checked)"
    if result.clean:
        lines.append(f"clean: {what}")
    else:
        counts = ", ".join(f"{n} {kind}" for kind, n in data["counts"].items() if n)
        lines.append(f"{len(result.findings)} findings ({counts}): {what}")
    return "\n".join(lines)


def dumps(result: AuditResult) -> str:
    return json.dumps(report_json(result), indent=2)

