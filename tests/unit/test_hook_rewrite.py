"""The hook's rewrite, exhaustively: source kind x local switch x tagging x metadata, every result
checked against libvirt's RelaxNG (and started on test:///default), the rest of the document
unchanged; and the deterministic choice across three hosts."""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import EXAMPLES, DomainChecker, tree, wrap_domain
from lxml import etree

from vifplug import GenericVIFDriver, load_vifs
from vifplug.hook import HookError, rewrite
from vifplug.model import QbgVif
from vifplug.netmap import NetworkMap, load_network_map
from vifplug.xml import metadata_entry

NS = "http://vifplug.org/xmlns/vifplug/1"
ID = "0f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f"
MAC = "fa:16:3e:12:34:56"


def example(name: str, **changes: Any) -> Any:
    data = json.loads((EXAMPLES / f"{name}.json").read_text())
    data.update(changes)
    data["id"], data["mac"] = ID, MAC
    data["network"] = {**data["network"], "name": "red"}
    if data["vif_type"] == "bridge":
        data["network"] = {"name": "red", "bridge": "red"}
    return load_vifs(data)[0]


# The interface as it arrives (rendered by vifplug for the sending host).
SOURCES = {
    "legacy": example("bridge"),
    "ovs-vlan": example("ovs-virtualport"),
    "ovs-trunk": example("ovs-trunk"),
    "ovs-untagged": example("ovs-virtualport", network={"name": "red", "bridge": "br-int"}),
    "ovs-manual": example("ovs-manual"),
    # from an OVN chassis: br-int, untagged, the interfaceid naming the logical switch port;
    # through libvirt's virtualport or the hybrid qbr
    "ovn": example("ovs-virtualport", network={"name": "red", "bridge": "br-int"}),
    "ovn-hybrid": example("ovs-hybrid", network={"name": "red", "bridge": "br-int"}),
    "direct": example("direct", bandwidth=None),
    "qbg": example("802.1qbg"),
    "qbh": example("802.1qbh"),
}
# What the receiving host says about network 'red'.
MAPS = {
    "legacy": '[networks.red]\nswitch = "legacy"\nbridge = "br-red"\n',
    "ovs-vlan": '[networks.red]\nswitch = "ovs"\nbridge = "br-int"\nvlan = 100\n',
    "ovs-trunk": '[networks.red]\nswitch = "ovs"\nbridge = "br-int"\ntrunk = [10, 20]\n',
    "ovs-untagged": '[networks.red]\nswitch = "ovs"\nbridge = "br-int"\n',
    "ovn": '[networks.red]\nswitch = "ovn"\nlogical_switch = "ls-red"\n',
    "ovn-bridge": '[networks.red]\nswitch = "ovn"\nlogical_switch = "ls-red"\nbridge = "br-ovn"\n',
    "direct": '[networks.red]\nswitch = "direct"\ninterface = "eth3"\nmode = "bridge"\n',
    "direct-qbg": ('[networks.red]\nswitch = "direct"\ninterface = "eth3"\n'
                   "[networks.red.qbg]\nmanager_id = 7\ntype_id = 8\ntype_id_version = 9\n"),
    "direct-qbh": ('[networks.red]\nswitch = "direct"\ninterface = "eth3"\nmode = "passthrough"\n'
                   '[networks.red.qbh]\nprofile_id = "here"\n'),
}


def host_map(tmp_path: Path, name: str, *, override: bool = False) -> NetworkMap:
    """The map ``name``; with ``override``, its network's values win over a guest's own."""
    path = tmp_path / f"{name}{'-override' if override else ''}.toml"
    text = MAPS[name]
    if override:
        text = text.replace("[networks.red]\n", "[networks.red]\noverride = true\n", 1)
    path.write_text(text)
    return load_network_map(path)


FOREIGN = [
    etree.fromstring("<interface type='network'><mac address='52:54:00:00:00:01'/>"
                     "<source network='default'/><model type='e1000'/>"
                     "<address type='pci' domain='0x0000' bus='0x00' slot='0x07' "
                     "function='0x0'/></interface>"),
    etree.fromstring("<interface type='bridge'><mac address='52:54:00:00:00:02'/>"
                     "<source bridge='virbr9'/><model type='virtio'/></interface>"),
]


def domain_with(vif: Any, *, metadata: bool) -> etree._Element:
    driver = GenericVIFDriver()
    iface = driver.interface_xml(vif)
    etree.SubElement(iface, "address", type="pci", domain="0x0000", bus="0x00", slot="0x05",
                     function="0x0")
    meta = driver.metadata_xml([vif]) if metadata else None
    return wrap_domain([iface, *copy.deepcopy(FOREIGN)], meta, name="gæst")


def ours(root: etree._Element) -> etree._Element:
    found = root.find(f"devices/interface/mac[@address='{MAC}']/..")
    assert found is not None
    return found


def without_ours(root: etree._Element) -> tuple[Any, ...]:
    """The document minus our interface and vifplug's metadata: must never change."""
    root = copy.deepcopy(root)
    iface = ours(root)
    iface.getparent().remove(iface)
    metadata = root.find("metadata")
    if metadata is not None:
        for element in metadata.findall(f"{{{NS}}}interfaces"):
            metadata.remove(element)
        if not len(metadata):
            root.remove(metadata)
    return tree(root)


def guest_facing(iface: etree._Element) -> tuple[Any, ...]:
    """What the guest sees must survive: MAC, model, MTU, guest PCI address, queues, link."""
    return tuple(tree(e) if e is not None else None for e in (
        iface.find("mac"), iface.find("model"), iface.find("mtu"), iface.find("address"),
        iface.find("driver"), iface.find("link")))


def interface_id(vif: Any) -> str | None:
    ovs = getattr(vif, "ovs", None)
    return ovs.interface_id if ovs is not None else None


MATRIX = list(itertools.product(SOURCES, MAPS, (True, False)))


def refused(source: str, local: str) -> bool:
    """An OVN host cannot bind an interface that has no port identity (no interfaceid)."""
    return local.startswith("ovn") and interface_id(SOURCES[source]) is None


#: The merge rule (vifplug.merge): a parameter the guest asked for at render time (recorded in
#: its metadata) that the receiving host's network gives differently, without override = true.
CONFLICTS = {
    ("ovs-vlan", "ovs-trunk"): "vlan: the interface asks 100, network red",
    ("ovs-manual", "ovs-trunk"): "vlan: the interface asks 100, network red",
    ("ovs-trunk", "ovs-vlan"): "vlan: the interface asks trunk 100,200,300, network red",
    ("ovs-trunk", "ovs-trunk"): "vlan: the interface asks trunk 100,200,300, network red",
    ("qbg", "direct-qbg"): "managerid: the interface asks 11, network red",
    ("qbh", "ovs-vlan"): "vlan: the interface asks 42, network red",
    ("qbh", "ovs-trunk"): "vlan: the interface asks 42, network red",
    ("qbh", "direct-qbh"): "profileid: the interface asks finance, network red",
}


def requested_vlan(vif: Any) -> tuple[tuple[int, ...], bool] | None:
    """The VLAN the guest asked for at render time (its metadata's ask-vlan / ask-trunk)."""
    entry = metadata_entry(vif)
    if "ask-vlan" in entry:
        return (int(entry["ask-vlan"]),), False
    if "ask-trunk" in entry:
        return tuple(int(tag) for tag in entry["ask-trunk"].split(",")), True
    return None


@pytest.mark.parametrize(("source", "local", "metadata"), MATRIX)
def test_rewrite_matrix(source: str, local: str, metadata: bool, tmp_path: Path,
                        libvirt_check: DomainChecker) -> None:
    vif = SOURCES[source]
    before = domain_with(vif, metadata=metadata)
    text = etree.tostring(before, encoding="unicode")
    mapping = host_map(tmp_path, local)
    listed = metadata or source == "legacy"  # legacy convention: <source bridge='red'> = network
    if metadata and (source, local) in CONFLICTS:
        with pytest.raises(HookError) as caught:
            rewrite(text, mapping)
        assert str(caught.value).startswith(f"interface {MAC}: {CONFLICTS[source, local]} ")
        assert str(caught.value).endswith("; set override = true there to let the host win")
        # naming the line of the map's key that gives the value
        attribute = CONFLICTS[source, local].split(":")[0]
        keys = {"vlan": ("vlan =", "trunk ="), "managerid": ("manager_id =",),
                "profileid": ("profile_id =",)}[attribute]
        line = next(number for number, text in enumerate(MAPS[local].splitlines(), 1)
                    if text.startswith(keys))
        assert f"network red ({mapping.path}:{line}) gives " in str(caught.value)
        # with override = true on the host's network, the host's value wins
        rewrite(text, host_map(tmp_path, local, override=True))
        return
    if listed and refused(source, local):
        with pytest.raises(HookError) as caught:
            rewrite(text, mapping)
        assert str(caught.value).startswith(f"interface {MAC}: network 'red' is OVN logical "
                                            "switch 'ls-red' on this host")
        assert "no port identity" in str(caught.value)
        assert "\n" not in str(caught.value)
        return
    after = etree.fromstring(rewrite(text, mapping))
    libvirt_check.validate(after)
    libvirt_check.start(after)
    old, new = ours(before), ours(after)
    assert guest_facing(new) == guest_facing(old)
    if not listed:
        assert tree(after) == tree(before)  # not vifplug's (no metadata): left alone
        return
    assert without_ours(after) == without_ours(before)
    entry = after.find(f"metadata/{{{NS}}}interfaces/{{{NS}}}interface[@mac='{MAC}']")
    assert entry is not None
    assert entry.get("network") == "red"
    expect = EXPECT[local]
    expect(new, old, vif)


def _legacy(new: etree._Element, old: etree._Element, vif: Any) -> None:
    assert new.get("type") == "bridge"
    assert new.find("source").attrib == {"bridge": "br-red"}
    assert new.find("virtualport") is None
    assert new.find("vlan") is None
    target = new.find("target")
    assert target is None or "managed" not in target.attrib


def old_has_metadata(old: etree._Element) -> bool:
    """Whether the domain holding ``old`` has a vifplug metadata entry for it."""
    root = old.getroottree().getroot()
    return root.find(f"metadata/{{{NS}}}interfaces/{{{NS}}}interface[@mac='{MAC}']") is not None


def _ovs(tags: tuple[int, ...] | None, trunk: bool) -> Any:
    def check(new: etree._Element, old: etree._Element, vif: Any) -> None:
        assert new.get("type") == "bridge"
        assert new.find("source").attrib == {"bridge": "br-int"}
        port = new.find("virtualport")
        assert port is not None
        assert port.get("type") == "openvswitch"
        params = port.find("parameters")
        assert (params.get("interfaceid") if params is not None else None) == interface_id(vif)
        vlan = new.find("vlan")
        want_tags, want_trunk = tags, trunk
        asked = requested_vlan(vif) if old_has_metadata(old) else None
        if tags is None and asked is not None:
            # the map says nothing: the VLAN the guest asked for at render time (merge rule)
            want_tags, want_trunk = asked
        elif tags is None and old.find("vlan[@trunk='yes']") is not None:
            # nor the guest (rendered before the rule): a trunk it arrived with is kept
            want_tags = tuple(int(t.get("id")) for t in old.findall("vlan/tag"))
            want_trunk = True
        if want_tags is None:
            assert vlan is None
        else:
            assert vlan is not None
            assert tuple(int(t.get("id")) for t in vlan.findall("tag")) == want_tags
            assert (vlan.get("trunk") == "yes") is want_trunk
    return check


def _ovn(bridge: str) -> Any:
    def check(new: etree._Element, old: etree._Element, vif: Any) -> None:
        assert new.get("type") == "bridge"
        assert new.find("source").attrib == {"bridge": bridge}
        assert new.find("vlan") is None  # OVN carries the network, never a local tag
        port = new.find("virtualport")
        assert port is not None
        assert port.get("type") == "openvswitch"
        assert port.find("parameters").attrib == {"interfaceid": interface_id(vif)}
        target = new.find("target")
        assert target is None or "managed" not in target.attrib
    return check


def _direct(mode: str, profile: str | None) -> Any:
    def check(new: etree._Element, old: etree._Element, vif: Any) -> None:
        assert new.get("type") == "direct"
        assert new.find("source").attrib == {"dev": "eth3", "mode": mode}
        assert new.find("vlan") is None
        port = new.find("virtualport")
        want = profile
        if want is None:  # the map gives no profile: the interface's own, if it has one
            want = {"802.1qbg": "802.1Qbg", "802.1qbh": "802.1Qbh"}.get(vif.vif_type)
        assert (port.get("type") if port is not None else None) == want
        if want == "802.1Qbg":
            params = port.find("parameters").attrib
            # instanceid is always the interface's own (none: libvirt generates one)
            own = vif.qbg.instance_id if isinstance(vif, QbgVif) else None
            assert params.get("instanceid") == own
            if profile == "802.1Qbg":  # the map's host-level parameters win
                assert (params["managerid"], params["typeid"], params["typeidversion"]) == (
                    "7", "8", "9")
        if want == "802.1Qbh":
            expected = "here" if profile == "802.1Qbh" else vif.qbh.profile_id
            assert port.find("parameters").get("profileid") == expected
    return check


EXPECT = {
    "legacy": _legacy,
    "ovs-vlan": _ovs((100,), trunk=False),
    "ovs-trunk": _ovs((10, 20), trunk=True),
    "ovs-untagged": _ovs(None, trunk=False),
    "ovn": _ovn("br-int"),
    "ovn-bridge": _ovn("br-ovn"),
    "direct": _direct("bridge", None),
    "direct-qbg": _direct("vepa", "802.1Qbg"),
    "direct-qbh": _direct("passthrough", "802.1Qbh"),
}


def test_legacy_convention_adds_the_metadata_entry(tmp_path: Path) -> None:
    before = domain_with(SOURCES["legacy"], metadata=False)
    assert before.find("metadata") is None
    after = etree.fromstring(rewrite(etree.tostring(before), host_map(tmp_path, "ovs-vlan")))
    entries = after.findall(f"metadata/{{{NS}}}interfaces/{{{NS}}}interface")
    assert [(e.get("mac"), e.get("network")) for e in entries] == [(MAC, "red")]
    assert after.find("metadata").getprevious().tag in ("name", "uuid")


def test_other_metadata_is_kept(tmp_path: Path) -> None:
    before = domain_with(SOURCES["ovs-vlan"], metadata=True)
    other = etree.SubElement(before.find("metadata"), "{urn:example:nova}instance",
                             nsmap={"nova": "urn:example:nova"})
    etree.SubElement(other, "{urn:example:nova}flavor", name="m1.small")
    after = etree.fromstring(rewrite(etree.tostring(before), host_map(tmp_path, "legacy")))
    kept = after.find("metadata/{urn:example:nova}instance")
    assert kept is not None
    assert tree(kept) == tree(other)


def test_missing_network_names_mac_network_and_map(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere.toml"
    path.write_text('[networks.blue]\nswitch = "legacy"\n')
    before = domain_with(SOURCES["ovs-vlan"], metadata=True)
    with pytest.raises(HookError) as caught:
        rewrite(etree.tostring(before), load_network_map(path))
    assert str(caught.value) == (f"interface {MAC}: network 'red' is not defined on this host "
                                 f"({path})")


def test_interfaceid_survives_a_legacy_hop(tmp_path: Path) -> None:
    """ovs → legacy → ovs: the legacy host drops the virtualport, the metadata keeps the id."""
    start = domain_with(SOURCES["ovs-vlan"], metadata=True)
    on_legacy = rewrite(etree.tostring(start), host_map(tmp_path, "legacy"))
    assert etree.fromstring(on_legacy).find("devices/interface/virtualport") is None
    back = etree.fromstring(rewrite(on_legacy, host_map(tmp_path, "ovs-vlan")))
    assert ours(back).find("virtualport/parameters").get("interfaceid") == ID


@pytest.mark.parametrize(("source", "h3_map"), [
    ("qbg", "direct-qbg"), ("qbg", "direct"), ("qbh", "direct"), ("direct", "direct"),
    ("ovs-vlan", "direct-qbh"),
])
def test_choice_depends_only_on_the_receiving_host_and_the_interface(
        source: str, h3_map: str, tmp_path: Path) -> None:
    """The docs' three hosts: H1 macvtap with an 802.1Qbh (VN-Link) profile, H2 a Linux
    bridge, H3 macvtap that can do all three (its map's profile if it gives one, else the
    guest's own 802.1Qbh or 802.1Qbg profile, else plain vepa). A guest from H1 lands on H3 the
    same way whether it went there directly or through H2."""
    # override = true: these hosts' profiles win over the guest's own (else a guest asking
    # another profile is refused: CONFLICTS)
    h1 = host_map(tmp_path, "direct-qbh", override=True)
    h2 = host_map(tmp_path, "legacy")
    h3 = host_map(tmp_path, h3_map, override=True)
    start = etree.tostring(domain_with(SOURCES[source], metadata=True))
    on_h1 = rewrite(start, h1)
    direct = rewrite(on_h1, h3)
    via_h2 = rewrite(rewrite(on_h1, h2), h3)
    assert tree(ours(etree.fromstring(direct))) == tree(ours(etree.fromstring(via_h2)))
    # and a second pass on the same host changes nothing
    assert tree(etree.fromstring(rewrite(direct, h3))) == tree(etree.fromstring(direct))


def test_rewrite_is_idempotent_on_every_map(tmp_path: Path) -> None:
    for source, local in itertools.product(SOURCES, MAPS):
        if refused(source, local) or (source, local) in CONFLICTS:
            continue
        once = rewrite(etree.tostring(domain_with(SOURCES[source], metadata=True)),
                       host_map(tmp_path, local))
        assert tree(etree.fromstring(rewrite(once, host_map(tmp_path, local)))) == tree(
            etree.fromstring(once)), (source, local)


# --- identities the interface arrives with ------------------------------------------------------


def visit(domain: str | bytes, local: str, tmp_path: Path, checker: DomainChecker) -> str:
    """The guest arrives on a host with map ``local``: the hook rewrites it, libvirt there runs
    it (test:///default generates what a real libvirt generates: an OVS interfaceid, an 802.1Qbg
    instanceid), and what libvirt would send on to the next host comes back."""
    rewritten = etree.fromstring(rewrite(domain, host_map(tmp_path, local)))
    checker.validate(rewritten)
    return etree.tostring(checker.start(rewritten), encoding="unicode")


def remembered(domain: str) -> dict[str, str]:
    entry = etree.fromstring(domain).find(
        f"metadata/{{{NS}}}interfaces/{{{NS}}}interface[@mac='{MAC}']")
    assert entry is not None
    return dict(entry.attrib)


def port_parameters(domain: str) -> tuple[str | None, dict[str, str]]:
    """Our interface's virtualport: its type and parameters (None, {} without one)."""
    port = ours(etree.fromstring(domain)).find("virtualport")
    if port is None:
        return None, {}
    params = port.find("parameters")
    return port.get("type"), dict(params.attrib) if params is not None else {}


@pytest.mark.parametrize("back", ["ovs-vlan", "ovs-untagged", "ovn"])
@pytest.mark.parametrize("hop", ["legacy", "direct", "direct-qbh"])
def test_interfaceid_libvirt_generated_survives_later_hops(
        hop: str, back: str, tmp_path: Path, libvirt_check: DomainChecker) -> None:
    """Issue 8, item 9: a guest born on a Linux bridge has no interfaceid. Its first OVS host
    gets a bare virtualport and libvirt there generates one; the next host (whose switch has no
    place for it) must remember that id, so every later OVS host gives the port the same one."""
    start = etree.tostring(domain_with(SOURCES["legacy"], metadata=False))
    bare = rewrite(start, host_map(tmp_path, "ovs-vlan"))
    assert port_parameters(bare) == ("openvswitch", {})  # nothing to keep: libvirt generates it
    on_ovs = visit(start, "ovs-vlan", tmp_path, libvirt_check)
    kind, params = port_parameters(on_ovs)
    assert kind == "openvswitch"
    generated = params.get("interfaceid")
    assert generated is not None, "libvirt generated no interfaceid"
    assert "interfaceid" not in remembered(on_ovs)  # only libvirt's XML has it so far

    on_hop = visit(on_ovs, hop, tmp_path, libvirt_check)
    assert port_parameters(on_hop)[1].get("interfaceid") is None  # this switch dropped it...
    assert remembered(on_hop)["interfaceid"] == generated  # ...the metadata did not
    again = visit(on_hop, back, tmp_path, libvirt_check)
    assert port_parameters(again) == ("openvswitch", {"interfaceid": generated})
    assert remembered(again)["interfaceid"] == generated


@pytest.mark.parametrize(("hop", "back"), [
    ("legacy", "direct-qbg"), ("legacy", "direct"), ("ovs-vlan", "direct-qbg"),
    ("ovs-vlan", "direct"), ("direct-qbh", "direct-qbg"),
])
def test_instanceid_libvirt_generated_survives_later_hops(
        hop: str, back: str, tmp_path: Path, libvirt_check: DomainChecker) -> None:
    """The same for 802.1Qbg: the first Qbg host's map gives the host-level parameters and the
    guest has no instanceid, so libvirt there generates one; later Qbg hosts keep it (rule 2 on
    a map with qbg, rule 4 on one without: the parameters came from the first host's map)."""
    start = etree.tostring(domain_with(SOURCES["legacy"], metadata=False))
    assert port_parameters(rewrite(start, host_map(tmp_path, "direct-qbg"))) == (
        "802.1Qbg", {"managerid": "7", "typeid": "8", "typeidversion": "9"})
    on_qbg = visit(start, "direct-qbg", tmp_path, libvirt_check)
    generated = port_parameters(on_qbg)[1].get("instanceid")
    assert generated is not None, "libvirt generated no instanceid"

    on_hop = visit(on_qbg, hop, tmp_path, libvirt_check)
    assert port_parameters(on_hop)[0] != "802.1Qbg"
    assert remembered(on_hop)["instanceid"] == generated
    again = visit(on_hop, back, tmp_path, libvirt_check)
    assert port_parameters(again) == ("802.1Qbg", {
        "managerid": "7", "typeid": "8", "typeidversion": "9", "instanceid": generated})


@pytest.mark.parametrize(("source", "key", "home"), [
    ("ovs-vlan", "interfaceid", "ovs-vlan"),
    ("qbg", "instanceid", "direct"),
    ("qbh", "profileid", "direct"),
])
def test_identity_on_arrival_is_newer_than_the_metadata(
        source: str, key: str, home: str, tmp_path: Path) -> None:
    """The metadata says one thing, the incoming virtualport another (changed, or generated,
    on the host the guest comes from): the virtualport's is newer; a Linux-bridge hop records
    it and the next host of the old kind gives it back (an 802.1Qbh profile from the
    interface: the map gives none)."""
    before = domain_with(SOURCES[source], metadata=True)
    params = ours(before).find("virtualport/parameters")
    old = params.get(key)
    entry = before.find(f"metadata/{{{NS}}}interfaces/{{{NS}}}interface")
    assert old is not None
    assert entry.get(key) == old
    new = "c0ffee00-1d2e-4f3a-9b8c-7d6e5f4a3b2c" if key != "profileid" else "payroll"
    params.set(key, new)
    on_legacy = rewrite(etree.tostring(before), host_map(tmp_path, "legacy"))
    assert remembered(on_legacy)[key] == new
    home_again = rewrite(on_legacy, host_map(tmp_path, home))
    # a per-guest identity: the newest; an 802.1Qbh profile is a host-level parameter: what the
    # guest asked for at render time wins over what it carries (the merge rule's interface layer)
    assert port_parameters(home_again)[1][key] == (old if key == "profileid" else new)


def test_the_maps_host_level_parameters_are_what_the_interface_carries_now(
        tmp_path: Path) -> None:
    """An 802.1Qbg guest arrives with its own manager/type ids on a host whose map gives
    others: refused (the merge rule) unless the map says override = true; then the map's are
    what it carries now, and what the metadata keeps (the instanceid stays the guest's); a later
    host without a profile in its map gives the guest's own request back, not what the previous
    host's map wrote (merge rule: the interface layer is what the guest asked at render time)."""
    start = etree.tostring(domain_with(SOURCES["qbg"], metadata=True))
    vif = SOURCES["qbg"]
    with pytest.raises(HookError, match="managerid: the interface asks 11, network red"):
        rewrite(start, host_map(tmp_path, "direct-qbg"))
    here = rewrite(start, host_map(tmp_path, "direct-qbg", override=True))
    expected = {"managerid": "7", "typeid": "8", "typeidversion": "9",
                "instanceid": vif.qbg.instance_id}
    assert port_parameters(here) == ("802.1Qbg", expected)
    assert {k: remembered(here)[k] for k in expected} == expected
    later = rewrite(rewrite(here, host_map(tmp_path, "legacy")), host_map(tmp_path, "direct"))
    assert port_parameters(later) == ("802.1Qbg", {
        "managerid": "11", "typeid": "1193047", "typeidversion": "2",
        "instanceid": vif.qbg.instance_id})


def test_an_ovs_profileid_is_not_an_802_1qbh_profile(tmp_path: Path) -> None:
    """libvirt's openvswitch virtualport may carry a ``profileid`` (an OVS port profile): it is
    neither used nor remembered as an 802.1Qbh profile."""
    before = domain_with(SOURCES["ovs-vlan"], metadata=True)
    ours(before).find("virtualport/parameters").set("profileid", "menial")
    text = etree.tostring(before)
    for local in ("direct", "legacy"):
        after = rewrite(text, host_map(tmp_path, local))
        assert port_parameters(after)[0] is None  # plain macvtap / a Linux bridge
        assert "profileid" not in remembered(after)
        assert remembered(after)["interfaceid"] == ID


# --- OVN ------------------------------------------------------------------------------------------


def test_an_ovn_host_refuses_an_interface_without_a_port_identity(tmp_path: Path) -> None:
    """The hook program: nothing on stdout, one line naming the interface, exit 1 (libvirt
    refuses the incoming migration; the guest keeps running on the source)."""
    import io

    from vifplug.hook import main

    path = tmp_path / "ovn.toml"
    path.write_text(MAPS["ovn"])
    domain = etree.tostring(domain_with(SOURCES["legacy"], metadata=True))
    out, err = io.StringIO(), io.StringIO()
    code = main(["gæst", "migrate", "begin", "-"], io.BytesIO(domain), out, err,
                networks=str(path))
    assert code == 1
    assert out.getvalue() == ""
    lines = err.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"vifplug: interface {MAC}: network 'red' is OVN")


@pytest.mark.parametrize("local", ["ovs-vlan", "ovs-trunk", "legacy", "direct"])
def test_ovn_and_back_keeps_the_port_identity(local: str, tmp_path: Path,
                                              libvirt_check: DomainChecker) -> None:
    """ovn → another switch → ovn: the logical switch port's name survives the hop (the metadata
    keeps it where the other switch drops the virtualport), and the OVN host drops the VLAN the
    OVS host set."""
    start = etree.tostring(domain_with(SOURCES["ovn"], metadata=True))
    elsewhere = visit(start, local, tmp_path, libvirt_check)
    back = visit(elsewhere, "ovn", tmp_path, libvirt_check)
    assert port_parameters(back) == ("openvswitch", {"interfaceid": ID})
    assert ours(etree.fromstring(back)).find("vlan") is None
    assert ours(etree.fromstring(back)).find("source").attrib == {"bridge": "br-int"}


def test_a_legacy_guest_reaches_ovn_through_an_ovs_host(
        tmp_path: Path, libvirt_check: DomainChecker) -> None:
    """Born on a Linux bridge, it has no identity: refused by an OVN host directly, accepted
    once an OVS host's libvirt generated an interfaceid (which the CMS must then have made a
    logical switch port of)."""
    start = etree.tostring(domain_with(SOURCES["legacy"], metadata=False))
    with pytest.raises(HookError, match="no port identity"):
        rewrite(start, host_map(tmp_path, "ovn"))
    on_ovs = visit(start, "ovs-untagged", tmp_path, libvirt_check)
    generated = port_parameters(on_ovs)[1]["interfaceid"]
    on_ovn = visit(on_ovs, "ovn", tmp_path, libvirt_check)
    assert port_parameters(on_ovn) == ("openvswitch", {"interfaceid": generated})


# --- interfaces the hook cannot move: host devices, and isolated ports off a Linux bridge -------


@pytest.mark.parametrize("local", sorted(MAPS))
@pytest.mark.parametrize(("name", "what"), [
    ("hostdev", "a type='hostdev' NIC is an SR-IOV VF passed through"),
    ("vdpa", "a type='vdpa' NIC is a vDPA device (the source host's /dev/vhost-vdpa-N)"),
])
def test_device_nics_are_refused(name: str, what: str, local: str, tmp_path: Path) -> None:
    """A VF or a vDPA device is the source host's: no switch of this host can take it, and
    rewriting it (as the hook once did a VF) would make a type='bridge' NIC of nonsense."""
    vif = example(name)
    domain = etree.tostring(domain_with(vif, metadata=True), encoding="unicode")
    with pytest.raises(HookError) as raised:
        rewrite(domain, host_map(tmp_path, local))
    assert str(raised.value).startswith(f"interface {MAC}: {what}")
    assert str(raised.value).endswith("which the hook cannot move to network 'red''s switch on "
                                      "this host; refused")
    # a move of other networks leaves it alone
    assert f'type="{name}"' in rewrite(domain, host_map(tmp_path, local), networks=["blue"])


@pytest.mark.parametrize("local", sorted(MAPS))
def test_an_isolated_port_moves_only_to_a_linux_bridge(local: str, tmp_path: Path,
                                                       libvirt_check: DomainChecker) -> None:
    vif = example("bridge-isolated")
    domain = etree.tostring(domain_with(vif, metadata=True), encoding="unicode")
    if MAPS[local].count('switch = "legacy"'):
        new = etree.fromstring(rewrite(domain, host_map(tmp_path, local)).encode())
        assert ours(new).find("port").attrib == {"isolated": "yes"}
        assert ours(new).find("source").get("bridge") == "br-red"
        libvirt_check.start(new)
        return
    with pytest.raises(HookError) as raised:
        rewrite(domain, host_map(tmp_path, local))
    assert str(raised.value).startswith(f"interface {MAC}: <port isolated='yes'/> needs a Linux "
                                        "bridge, and network 'red' is a ")


def test_a_failover_vf_is_left_as_it_arrived(tmp_path: Path) -> None:
    """The transient VF of a failover pair is not refused: QEMU plugs it again on this host;
    its persistent virtio partner is rewritten for the local switch as usual."""
    vifs = load_vifs(EXAMPLES / "failover-pair.json")
    driver = GenericVIFDriver()
    metadata = driver.metadata_xml(vifs)
    # one entry, the virtio NIC's: entries are by MAC, and the VF is not the hook's to move
    assert [entry.get("network") for entry in metadata] == ["red"]
    domain = wrap_domain([driver.interface_xml(vif) for vif in vifs], metadata)
    text = etree.tostring(domain, encoding="unicode")
    local = tmp_path / "map.toml"
    local.write_text('[networks.red]\nswitch = "legacy"\nbridge = "br-red"\n'
                     '[networks.sriov]\nswitch = "legacy"\nbridge = "br-sriov"\n')
    new = etree.fromstring(rewrite(text, load_network_map(local)).encode())
    virtio, vf = new.findall("devices/interface")
    assert tree(vf) == tree(domain.findall("devices/interface")[1])
    assert virtio.find("source").get("bridge") == "br-red"
    assert virtio.find("teaming").attrib == {"type": "persistent"}
    assert virtio.find("alias").get("name") == "ua-backup0"
