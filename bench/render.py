"""Render throughput: vifplug's ``GenericVIFDriver.render`` side by side with bare lxml.

What it compares, in one run and interleaved repeat by repeat:

* **vifplug**: ``driver.render(vif, pretty=False)`` (select the connection, build the
  ``<interface>`` element, serialise it) for a mixed set of already-loaded :class:`~vifplug.Vif`
  objects: every VIF of ``examples/*.json`` (arrays included), each under three drivers:
  ``GenericVIFDriver()``, ``GenericVIFDriver(firewall=True)`` (OVS VIFs take the hybrid path,
  bridge VIFs get their ``<filterref>``) and ``GenericVIFDriver(libvirt_version="0.9.10")`` (OVS
  VIFs are plugged manually, no ``<mtu>``, no ``managed='no'``). Every connection kind appears.
* **bare lxml**: for the same (driver, VIF) pairs, hand-written code that builds exactly the same
  tree with ``etree.Element`` / ``etree.SubElement`` and calls
  ``etree.tostring(..., encoding="unicode")``. Checked once at start to be byte-identical to
  vifplug's output for every pair.

Fairness of the bare-lxml baseline: it creates every element and serialises on every call, as
vifplug does; nothing is cached between calls. What it is allowed to prepare beforehand (see
:func:`prepare`) is the *attribute values* (strings such as ``"1450"`` or ``"tap0f6d3c1e-5b"``,
derived by hand from the VIF and the driver options) and which hand-written builder to call (the
connection kind). So the baseline is the floor, "lxml's own cost"; the ratio vifplug/bare is what
vifplug adds on top: choosing the connection, deriving values (``str()``, tap names, version
checks) and its helper calls.

Also reported, for information: ``load_vifs(data)`` (pydantic validation of the parsed JSON of
each example file) in VIFs per second.

Goals: at least 20,000 interfaces/s, and at most 2x the bare-lxml cost per interface.

Run by hand (never from the tests); takes about half a minute::

    /work/venv/bin/python bench/render.py                 # the table
    /work/venv/bin/python bench/render.py --repeats 7 --min-time 0.5
    /work/venv/bin/python bench/render.py --by-kind       # also one row per connection kind
    /work/venv/bin/python bench/render.py --profile       # cProfile of the vifplug loop
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from vifplug import GenericVIFDriver, Vif, load_vifs
from vifplug.connections import REGISTRY

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

GOAL_PER_SECOND = 20_000
GOAL_RATIO = 2.0

#: The three driver configurations every example VIF is rendered under.
DRIVERS: dict[str, dict[str, Any]] = {
    "default": {},
    "firewall": {"firewall": True},
    "libvirt-0.9.10": {"libvirt_version": "0.9.10"},
}

# --- bare lxml ---------------------------------------------------------------------------------

_Element = etree.Element
_SubElement = etree.SubElement
_tostring = etree.tostring

_MTU = (3, 1, 0)  # <mtu size> since libvirt 3.1.0
_MANAGED_NO = (5, 1, 0)  # <target managed='no'> since libvirt 5.1.0
_OVS_VIRTUALPORT = (0, 9, 11)  # <virtualport type='openvswitch'> since libvirt 0.9.11
_USER_ALIAS = (3, 9, 0)  # <alias name='ua-…'/> since libvirt 3.9.0
_PORT_ISOLATED = _TEAMING = (6, 1, 0)  # <port isolated>, <teaming> since libvirt 6.1.0
_VDPA = (6, 9, 0)  # type='vdpa' since libvirt 6.9.0


@dataclass(slots=True)
class Prepared:
    """Attribute values for one (driver, VIF) pair, as the strings that end up in the XML.

    ``None`` means "no such element". Derived by hand from the VIF fields and the driver options
    in :func:`prepare` (not by calling vifplug's builders)."""

    kind: str
    mac: str
    type_: str = ""
    bridge: str | None = None
    source_dev: str | None = None
    source_mode: str | None = None
    socket: str | None = None
    pci: tuple[str, str, str, str] | None = None
    vlan: str | None = None
    trunk: tuple[str, ...] | None = None
    virtualport: str | None = None
    port_params: dict[str, str] | None = None
    bandwidth: tuple[tuple[str, dict[str, str]], ...] | None = None
    target: str | None = None
    managed_no: bool = False
    model: str = "virtio"
    queues: str | None = None
    filter_name: str | None = None
    filter_params: tuple[tuple[str, str], ...] = ()
    link: str | None = None
    mtu: str | None = None
    isolated: bool = False
    teaming: dict[str, str] | None = None
    alias: str | None = None


def _bare_teaming_alias(iface: etree._Element, p: Prepared, *, alias: bool = True) -> None:
    if p.teaming is not None:
        _SubElement(iface, "teaming", p.teaming)
    if alias and p.alias is not None:
        _SubElement(iface, "alias", name=p.alias)


def _bare_tail(iface: etree._Element, p: Prepared) -> None:
    """bandwidth, port, target, model, driver, filterref, teaming, link, mtu, alias: libvirt's
    order."""
    if p.bandwidth is not None:
        bandwidth = _SubElement(iface, "bandwidth")
        for tag, attrib in p.bandwidth:
            _SubElement(bandwidth, tag, attrib)
    if p.isolated:
        _SubElement(iface, "port", isolated="yes")
    if p.target is not None:
        if p.managed_no:
            _SubElement(iface, "target", dev=p.target, managed="no")
        else:
            _SubElement(iface, "target", dev=p.target)
    _SubElement(iface, "model", type=p.model)
    if p.queues is not None:
        _SubElement(iface, "driver", queues=p.queues)
    if p.filter_name is not None:
        ref = _SubElement(iface, "filterref", filter=p.filter_name)
        for name, value in p.filter_params:
            _SubElement(ref, "parameter", name=name, value=value)
    _bare_teaming_alias(iface, p, alias=False)
    if p.link is not None:
        _SubElement(iface, "link", state=p.link)
    if p.mtu is not None:
        _SubElement(iface, "mtu", size=p.mtu)
    if p.alias is not None:
        _SubElement(iface, "alias", name=p.alias)


def _bare_vlan(iface: etree._Element, p: Prepared) -> None:
    if p.vlan is not None:
        _SubElement(_SubElement(iface, "vlan"), "tag", id=p.vlan)
    elif p.trunk is not None:
        vlan = _SubElement(iface, "vlan", trunk="yes")
        for tag in p.trunk:
            _SubElement(vlan, "tag", id=tag)


def bare_bridge(p: Prepared) -> str:
    """Linux bridge and OVS hybrid (on qbr…): ``type='bridge'`` with ``<source bridge>``."""
    iface = _Element("interface", type="bridge")
    _SubElement(iface, "mac", address=p.mac)
    _SubElement(iface, "source", bridge=p.bridge)
    _bare_tail(iface, p)
    return _tostring(iface, encoding="unicode")


def bare_ovs_virtualport(p: Prepared) -> str:
    iface = _Element("interface", type="bridge")
    _SubElement(iface, "mac", address=p.mac)
    _SubElement(iface, "source", bridge=p.bridge)
    _bare_vlan(iface, p)
    port = _SubElement(iface, "virtualport", type="openvswitch")
    _SubElement(port, "parameters", p.port_params)
    _bare_tail(iface, p)
    return _tostring(iface, encoding="unicode")


def bare_ethernet(p: Prepared) -> str:
    """Plain ethernet and OVS manual: a TAP, no source."""
    iface = _Element("interface", type="ethernet")
    _SubElement(iface, "mac", address=p.mac)
    _bare_tail(iface, p)
    return _tostring(iface, encoding="unicode")


def bare_direct(p: Prepared) -> str:
    """macvtap: direct, 802.1Qbg, 802.1Qbh."""
    iface = _Element("interface", type="direct")
    _SubElement(iface, "mac", address=p.mac)
    _SubElement(iface, "source", dev=p.source_dev, mode=p.source_mode)
    _bare_vlan(iface, p)
    if p.virtualport is not None:
        port = _SubElement(iface, "virtualport", type=p.virtualport)
        _SubElement(port, "parameters", p.port_params)
    _bare_tail(iface, p)
    return _tostring(iface, encoding="unicode")


def bare_vhostuser(p: Prepared) -> str:
    iface = _Element("interface", type="vhostuser")
    _SubElement(iface, "mac", address=p.mac)
    _SubElement(iface, "source", type="unix", path=p.socket, mode=p.source_mode)
    _bare_tail(iface, p)
    return _tostring(iface, encoding="unicode")


def bare_hostdev(p: Prepared) -> str:
    assert p.pci is not None
    domain, bus, slot, function = p.pci
    iface = _Element("interface", type="hostdev", managed="yes")
    _SubElement(iface, "mac", address=p.mac)
    source = _SubElement(iface, "source")
    _SubElement(source, "address", type="pci", domain=domain, bus=bus, slot=slot,
                function=function)
    _bare_vlan(iface, p)
    _bare_teaming_alias(iface, p)
    return _tostring(iface, encoding="unicode")


def bare_vdpa(p: Prepared) -> str:
    iface = _Element("interface", type="vdpa")
    _SubElement(iface, "mac", address=p.mac)
    _SubElement(iface, "source", dev=p.source_dev)
    _bare_tail(iface, p)
    return _tostring(iface, encoding="unicode")


BARE: dict[str, Callable[[Prepared], str]] = {
    "bridge": bare_bridge,
    "ovs-hybrid": bare_bridge,
    "ovs-virtualport": bare_ovs_virtualport,
    "ovs-manual": bare_ethernet,
    "ethernet": bare_ethernet,
    "direct": bare_direct,
    "802.1qbg": bare_direct,
    "802.1qbh": bare_direct,
    "vhostuser": bare_vhostuser,
    "hostdev": bare_hostdev,
    "vdpa": bare_vdpa,
}


class _Fields:
    """A VIF's vif.json keys as attributes, ``None`` where its kind has none."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        value = self._data.get(name)
        if name == "parameters":  # a filter's: ordered (name, value) pairs
            return tuple(value.items())
        if isinstance(value, dict):
            return _Fields(value)
        if isinstance(value, list):
            return tuple(value)
        return value


def _supports(version: tuple[int, ...] | None, since: tuple[int, int, int]) -> bool:
    return version is None or tuple(version) >= since


def renders(vif: Vif, version: tuple[int, ...] | None) -> bool:
    """Whether ``version`` knows every key and the kind of ``vif`` (else vifplug refuses it)."""
    data = vif.model_dump(mode="json")
    needs = [since for key, since in (("isolated", _PORT_ISOLATED), ("teaming", _TEAMING),
                                      ("alias", _USER_ALIAS)) if data.get(key)]
    needs += [_VDPA] if data["vif_type"] == "vdpa" else []
    return all(_supports(version, since) for since in needs)


def _ovs_kind(vif: Vif, firewall: bool, version: tuple[int, ...] | None) -> str:
    """VIF_FORMAT.md's "Choosing the plug method", by hand."""
    if vif.plug == "hybrid" or (vif.plug is None and firewall and not vif.filtered):
        return "ovs-hybrid"
    if vif.plug == "virtualport" or (vif.plug is None and _supports(version, _OVS_VIRTUALPORT)):
        return "ovs-virtualport"
    return "ovs-manual"


def prepare(vif: Vif, firewall: bool, version: tuple[int, ...] | None) -> Prepared:
    """The attribute values for one pair, derived by hand from the VIF's fields (read as plain
    data: each kind has only its own keys)."""
    vif = _Fields(vif.model_dump(mode="json"))
    kind = _ovs_kind(vif, firewall, version) if vif.vif_type == "ovs" else vif.vif_type
    p = Prepared(kind=kind, mac=vif.mac, model=vif.model or "virtio", link=vif.link_state)
    if vif.queues is not None:
        p.queues = str(vif.queues)
    if vif.mtu is not None and _supports(version, _MTU):
        p.mtu = str(vif.mtu)
    if vif.bandwidth is not None:
        rates = []
        for tag, rate in (("inbound", vif.bandwidth.inbound), ("outbound", vif.bandwidth.outbound)):
            if rate is None:
                continue
            attrib = {"average": str(rate.average)}
            if rate.peak is not None:
                attrib["peak"] = str(rate.peak)
            if rate.burst is not None:
                attrib["burst"] = str(rate.burst)
            rates.append((tag, attrib))
        p.bandwidth = tuple(rates)
    filter_ok = (kind == "bridge" and firewall and not vif.filtered) or kind == "ovs-hybrid"
    if filter_ok and vif.filter is not None:
        p.filter_name = vif.filter.name
        p.filter_params = tuple(vif.filter.parameters)
    vlan = vif.network.vlan
    p.vlan = None if vlan is None else str(vlan)
    p.isolated = bool(vif.isolated)
    if vif.teaming is not None:
        p.teaming = {"type": vif.teaming.type}
        if vif.teaming.persistent is not None:
            p.teaming["persistent"] = vif.teaming.persistent
    p.alias = vif.alias or ("ua-" + vif.id if vif.teaming is not None else None)
    _PREPARE_KIND[kind](p, vif, version)
    return p


def _tap(vif: Vif) -> str:
    return vif.devname or "tap" + vif.id[:11]


def _prepare_bridge(p: Prepared, vif: Vif, version: tuple[int, ...] | None) -> None:
    p.bridge = vif.network.bridge
    p.target = _tap(vif)


def _prepare_hybrid(p: Prepared, vif: Vif, version: tuple[int, ...] | None) -> None:
    p.bridge = "qbr" + vif.id[:11]
    p.target = _tap(vif)


def _prepare_virtualport(p: Prepared, vif: Vif, version: tuple[int, ...] | None) -> None:
    assert vif.ovs is not None
    trunk = vif.network.trunk
    p.bridge = vif.network.bridge
    p.target = _tap(vif)
    p.trunk = None if trunk is None else tuple(str(tag) for tag in trunk)
    p.port_params = {"interfaceid": vif.ovs.interface_id}


def _prepare_ethernet(p: Prepared, vif: Vif, version: tuple[int, ...] | None) -> None:
    p.target = _tap(vif)
    p.managed_no = _supports(version, _MANAGED_NO)


def _prepare_direct(p: Prepared, vif: Vif, version: tuple[int, ...] | None) -> None:
    mode = vif.direct.mode if vif.direct is not None else None
    p.source_dev = vif.network.interface
    p.source_mode = mode or ("passthrough" if p.kind == "802.1qbh" else "vepa")
    p.target = vif.devname
    if vif.qbg is not None:
        p.virtualport = "802.1Qbg"
        p.port_params = {
            "managerid": str(vif.qbg.manager_id), "typeid": str(vif.qbg.type_id),
            "typeidversion": str(vif.qbg.type_id_version), "instanceid": vif.qbg.instance_id,
        }
    if vif.qbh is not None:
        p.virtualport = "802.1Qbh"
        p.port_params = {"profileid": vif.qbh.profile_id}


def _prepare_vhostuser(p: Prepared, vif: Vif, version: tuple[int, ...] | None) -> None:
    assert vif.vhostuser is not None
    p.socket = vif.vhostuser.socket
    p.source_mode = vif.vhostuser.mode


def _prepare_hostdev(p: Prepared, vif: Vif, version: tuple[int, ...] | None) -> None:
    assert vif.hostdev is not None
    domain, bus, rest = vif.hostdev.pci.split(":")
    slot, function = rest.split(".")
    p.pci = (f"0x{domain}", f"0x{bus}", f"0x{slot}", f"0x{function}")


_PREPARE_KIND: dict[str, Callable[[Prepared, Vif, tuple[int, ...] | None], None]] = {
    "bridge": _prepare_bridge,
    "ovs-hybrid": _prepare_hybrid,
    "ovs-virtualport": _prepare_virtualport,
    "ovs-manual": _prepare_ethernet,
    "ethernet": _prepare_ethernet,
    "direct": _prepare_direct,
    "802.1qbg": _prepare_direct,
    "802.1qbh": _prepare_direct,
    "vhostuser": _prepare_vhostuser,
    "hostdev": _prepare_hostdev,
    "vdpa": lambda p, vif, version: setattr(p, "source_dev", vif.vdpa.device),
}


# --- the cases ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Case:
    label: str
    kind: str
    driver: GenericVIFDriver
    vif: Vif
    bare: Callable[[Prepared], str]
    prepared: Prepared


def example_data() -> list[tuple[str, Any]]:
    """(file name, parsed JSON) for every example."""
    return [(path.name, json.loads(path.read_text())) for path in sorted(EXAMPLES.glob("*.json"))]


def build_cases() -> list[Case]:
    drivers = {name: GenericVIFDriver(**kwargs) for name, kwargs in DRIVERS.items()}
    cases = []
    for driver_name, driver in drivers.items():
        version = driver.libvirt_version
        for file_name, data in example_data():
            for index, vif in enumerate(load_vifs(data)):
                if not renders(vif, version):
                    continue  # a key or kind newer than this libvirt: an error, not a case
                prepared = prepare(vif, driver.firewall, version)
                cases.append(Case(f"{driver_name}:{file_name}[{index}]", prepared.kind, driver,
                                  vif, BARE[prepared.kind], prepared))
    return cases


def verify(cases: Sequence[Case]) -> None:
    """Bare lxml must be byte-identical to vifplug for every pair, and every kind must appear."""
    for case in cases:
        chosen = case.driver.select(case.vif).name
        assert chosen == case.kind, f"{case.label}: vifplug chose {chosen}, bare {case.kind}"
        ours = case.driver.render(case.vif, pretty=False)
        bare = case.bare(case.prepared)
        assert bare == ours, f"{case.label}: outputs differ\n vifplug {ours}\n bare    {bare}"
    missing = set(REGISTRY) - {case.kind for case in cases}
    assert not missing, f"connection kinds never rendered: {sorted(missing)}"


# --- timing ------------------------------------------------------------------------------------


def loop_vifplug(cases: Sequence[Case]) -> Callable[[int], None]:
    pairs = [(case.driver.render, case.vif) for case in cases]

    def run(loops: int) -> None:
        for _ in range(loops):
            for render, vif in pairs:
                render(vif, pretty=False)

    return run


def loop_bare(cases: Sequence[Case]) -> Callable[[int], None]:
    pairs = [(case.bare, case.prepared) for case in cases]

    def run(loops: int) -> None:
        for _ in range(loops):
            for build, prepared in pairs:
                build(prepared)

    return run


def loop_load(data: Sequence[Any]) -> Callable[[int], None]:
    def run(loops: int) -> None:
        for _ in range(loops):
            for item in data:
                load_vifs(item)

    return run


def _time(run: Callable[[int], None], loops: int) -> int:
    gc.collect()
    start = time.perf_counter_ns()
    run(loops)
    return time.perf_counter_ns() - start


def calibrate(run: Callable[[int], None], min_time: float) -> int:
    """Loops per repeat so that one repeat takes at least ``min_time`` seconds."""
    loops = 1
    while True:
        elapsed = _time(run, loops)
        if elapsed >= min_time * 1e9 / 5:
            return max(1, int(loops * min_time * 1e9 / elapsed * 1.05) + 1)
        loops *= 2


@dataclass
class Result:
    name: str
    per_item_ns: list[float]  # one per repeat

    @property
    def best(self) -> float:
        return min(self.per_item_ns)

    @property
    def median(self) -> float:
        return statistics.median(self.per_item_ns)

    @property
    def worst(self) -> float:
        return max(self.per_item_ns)


def measure(runs: dict[str, tuple[Callable[[int], None], int]], repeats: int,
            min_time: float) -> dict[str, Result]:
    """Time every run ``repeats`` times, interleaved (a, b, a, b, ...), so drift hits both.

    ``runs`` maps a name to (run, items per loop)."""
    loops = {name: calibrate(run, min_time) for name, (run, _) in runs.items()}
    results = {name: Result(name, []) for name in runs}
    for _ in range(repeats):
        for name, (run, items) in runs.items():
            elapsed = _time(run, loops[name])
            results[name].per_item_ns.append(elapsed / (loops[name] * items))
    return results


def _rate(ns: float) -> str:
    return f"{1e9 / ns:>12,.0f}"


def print_table(results: dict[str, Result], unit: str) -> None:
    print(f"{'':26} {'best ' + unit + '/s':>14} {'median ' + unit + '/s':>14} "
          f"{'best us':>9} {'median us':>9} {'spread':>7}")
    for result in results.values():
        spread = (result.worst - result.best) / result.best
        print(f"{result.name:26} {_rate(result.best):>14} {_rate(result.median):>14} "
              f"{result.best / 1e3:>9.2f} {result.median / 1e3:>9.2f} {spread:>6.1%}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=7, help="repeats per measure (7)")
    parser.add_argument("--min-time", type=float, default=0.5,
                        help="seconds each repeat runs at least (0.5)")
    parser.add_argument("--by-kind", action="store_true",
                        help="also time each connection kind alone (5 repeats of 0.2 s)")
    parser.add_argument("--profile", action="store_true",
                        help="print a cProfile of the vifplug render loop and exit")
    args = parser.parse_args(argv)

    cases = build_cases()
    verify(cases)
    kinds = sorted({case.kind for case in cases})
    print(f"vifplug render benchmark: python {platform.python_version()}, "
          f"lxml {'.'.join(map(str, etree.LXML_VERSION))}, libxml2 "
          f"{'.'.join(map(str, etree.LIBXML_VERSION))}")
    print(f"{len(cases)} interfaces per pass ({len(kinds)} connection kinds: {', '.join(kinds)}); "
          "bare lxml output verified byte-identical for each")

    if args.profile:
        import cProfile
        import pstats

        run = loop_vifplug(cases)
        profiler = cProfile.Profile()
        profiler.runcall(run, 2000)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        return 0

    print(f"{args.repeats} repeats of >= {args.min_time} s each, interleaved; "
          "us = microseconds per interface\n")
    results = measure({
        "vifplug render": (loop_vifplug(cases), len(cases)),
        "bare lxml": (loop_bare(cases), len(cases)),
    }, args.repeats, args.min_time)
    print_table(results, "if")
    ours, bare = results["vifplug render"], results["bare lxml"]
    ratio_best = ours.best / bare.best
    ratio_median = ours.median / bare.median
    print(f"{'ratio vifplug/bare':26} {ratio_best:>13.2f}x {ratio_median:>13.2f}x"
          "   (cost per interface; best/best, median/median)")
    rate = 1e9 / ours.median
    print()
    print(f"goal >= {GOAL_PER_SECOND:,} interfaces/s: "
          f"{'met' if rate >= GOAL_PER_SECOND else 'MISSED'} ({rate:,.0f}/s median)")
    print(f"goal <= {GOAL_RATIO:.1f}x bare lxml:       "
          f"{'met' if ratio_median <= GOAL_RATIO else 'MISSED'} ({ratio_median:.2f}x median)")

    if args.by_kind:
        print("\nper connection kind (5 repeats of >= 0.2 s; best us per interface, the figure "
              "least disturbed by other load):")
        print(f"{'kind':18} {'cases':>5} {'vifplug us':>10} {'bare us':>8} {'ratio':>6}")
        for kind in kinds:
            subset = [case for case in cases if case.kind == kind]
            sub = measure({
                "vifplug": (loop_vifplug(subset), len(subset)),
                "bare": (loop_bare(subset), len(subset)),
            }, 5, 0.2)
            print(f"{kind:18} {len(subset):>5} {sub['vifplug'].best / 1e3:>10.2f} "
                  f"{sub['bare'].best / 1e3:>8.2f} "
                  f"{sub['vifplug'].best / sub['bare'].best:>5.2f}x")

    data = [item for _, item in example_data()]
    count = sum(len(load_vifs(item)) for item in data)
    print(f"\nfor information: load_vifs(parsed JSON) over the {len(data)} example files "
          f"({count} VIFs per pass)\n")
    load = measure({"load_vifs": (loop_load(data), count)}, args.repeats, args.min_time)
    print_table(load, "vif")
    return 0


if __name__ == "__main__":
    sys.exit(main())
