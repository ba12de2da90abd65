"""Real guests moved between switches in place (vifplug.guests.move_guests) on a real libvirtd.

One host (tests/fixtures/sites.both_switches: a netns with a private OVS and libvirtd) has both
switches of network ``red`` at once, each uplinked into one "physical" segment: the Linux bridge
``red`` and OVS ``br-int``, whose uplink is an access port with tag 100. A real Linux guest
(tests/fixtures/guest.py) runs on ``red`` while the segment's peer pings it every 20 ms
(tests/fixtures/pinger.py); its persistent definition and vifplug metadata carry its OVS
interfaceid. The map changes ``red`` from legacy to ovs (VLAN 100) and back, and move_guests
moves the running guest each time; after each move: libvirt's live and persistent XML name the
new switch, the TAP is where they say (the kernel's master, or an OVS port of br-int with tag 100
and libvirt's external_ids), the peer's pings are answered again (the number lost is reported,
never asserted), and the guest never rebooted (one ready line on its console).

Rollback: two guests move, the second onto an OVS bridge that does not exist; libvirt refuses,
the second guest is restored as it was, the first is moved back onto ``red`` and answers again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from tests.fixtures.guest import GuestImage, count_lines, guest_domain
from tests.fixtures.libvirtd import minimal_domain
from tests.fixtures.pinger import Pinger
from tests.fixtures.plugin import entered
from tests.fixtures.sites import LINUX_MAP, OVS_MAP, VLAN, BothSwitches, both_switches
from vifplug import GenericVIFDriver, load_vifs
from vifplug.guests import (
    RESTORE,
    UPDATE,
    GuestMoveError,
    guests_on_moving_networks,
    move_guests,
)
from vifplug.netmap import NetworkMap, load_network_map
from vifplug.xml import METADATA_NS

pytestmark = pytest.mark.root

GUEST_IP = "198.51.100.41"
#: Boot (~2-4 s under TCG) and the first replies; only bounds a failure.
GUEST_DEADLINE = 40.0
#: A move and the first reply through the new switch; only bounds a failure.
RESUME_DEADLINE = 30.0

PORT = {"id": "9b2c4d6e-8f0a-4b1c-9d2e-3f4a5b6c7d8e", "mac": "fa:16:3e:9b:2c:4d"}
INTERFACE_ID = "d00dfeed-1a2b-4c3d-8e4f-5a6b7c8d9e0f"
#: How the guest starts: a TAP on the Linux bridge red.
(ON_RED,) = load_vifs({**PORT, "vif_type": "bridge",
                       "network": {"name": "red", "bridge": "red"}})
#: Its identity in the network (the metadata records it): any OVS port of it has this iface-id.
(IDENTITY,) = load_vifs({**PORT, "vif_type": "ovs",
                         "network": {"name": "red", "bridge": "br-int"},
                         "ovs": {"interface_id": INTERFACE_ID}})
TAP = ON_RED.tap_name


@pytest.fixture(scope="module")
def host(_no_leaks: None, image: GuestImage) -> Iterator[BothSwitches]:
    yield from entered(both_switches())


def maps(tmp_path: Path, **texts: str) -> dict[str, NetworkMap]:
    found = {}
    for name, text in texts.items():
        path = tmp_path / f"{name}.toml"
        path.write_text(text)
        found[name] = load_network_map(path)
    return found


def interface(dom: Any, flags: int = 0) -> etree._Element:
    (iface,) = etree.fromstring(dom.XMLDesc(flags)).iterfind("devices/interface")
    return iface


def assert_on_ovs(host: BothSwitches, dom: Any, iface: etree._Element) -> None:
    assert iface.get("type") == "bridge"
    assert iface.find("source").get("bridge") == "br-int"
    assert iface.find("virtualport").get("type") == "openvswitch"
    assert iface.find("virtualport/parameters").get("interfaceid") == INTERFACE_ID
    assert [t.get("id") for t in iface.iterfind("vlan/tag")] == [str(VLAN)]
    assert iface.find("mac").get("address") == ON_RED.mac


def assert_tap_on_ovs(host: BothSwitches, dom: Any) -> None:
    assert host.ovs.vsctl("port-to-br", TAP) == "br-int"
    assert host.ovs.get("Port", TAP, "tag") == str(VLAN)
    assert host.ovs.get("Interface", TAP, "external_ids:iface-id") == INTERFACE_ID
    assert host.ovs.get("Interface", TAP, "external_ids:attached-mac") == ON_RED.mac
    assert host.ovs.get("Interface", TAP, "external_ids:vm-id") == dom.UUIDString()
    assert host.netns.link(TAP).get("master") is None  # not also on a Linux bridge


def assert_on_red(host: BothSwitches, iface: etree._Element) -> None:
    assert iface.get("type") == "bridge"
    assert iface.find("source").get("bridge") == "red"
    assert iface.find("virtualport") is None
    assert iface.find("vlan") is None
    assert iface.find("mac").get("address") == ON_RED.mac


def assert_tap_on_red(host: BothSwitches) -> None:
    assert host.netns.link(TAP)["master"] == "red"
    assert TAP not in host.ovs.ports("br-int")


def metadata_entry(dom: Any) -> etree._Element:
    import libvirt

    listing = etree.fromstring(dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NS))
    (entry,) = listing
    return entry


@contextlib.contextmanager
def running(conn: Any, xml: str, *, persistent: bool) -> Iterator[Any]:
    dom = conn.defineXML(xml) if persistent else None
    if dom is not None:
        dom.create()
    else:
        dom = conn.createXML(xml, 0)
    name = dom.name()
    try:
        yield dom
    finally:
        with contextlib.suppress(Exception):
            found = conn.lookupByName(name)
            if found.isActive():
                found.destroy()
            if found.isPersistent():
                found.undefine()


def test_running_guest_moves_to_ovs_and_back(
        host: BothSwitches, image: GuestImage, tmp_path: Path,
        report: Callable[[str], None]) -> None:
    import libvirt

    m = maps(tmp_path, legacy=LINUX_MAP, ovs=OVS_MAP,
             ovs200=OVS_MAP.replace(f"vlan = {VLAN}", "vlan = 200"))
    console = tmp_path / "guest.console"
    driver = GenericVIFDriver()
    xml = guest_domain("vp-move-guest", image, driver.interface_xml(ON_RED),
                       ip=f"{GUEST_IP}/24", peer=host.peer_ip, serial=console,
                       metadata=driver.metadata_xml([IDENTITY]))
    ready = f"VP-READY {GUEST_IP}/24"
    lost = []
    with running(host.conn, xml, persistent=True) as started, \
            Pinger(host.peer, GUEST_IP, interval=0.02) as pinger:
        pinger.wait_reply(timeout=GUEST_DEADLINE)
        assert_tap_on_red(host)
        uuid = started.UUIDString()

        # legacy -> ovs: a save and restore (libvirt cannot change a virtualport live)
        (planned,) = guests_on_moving_networks(host.conn, m["legacy"], m["ovs"])
        assert planned.method == RESTORE
        mark = pinger.mark()
        moved = move_guests(host.conn, m["legacy"], m["ovs"], save_dir=tmp_path)
        assert [g.domain for g in moved] == ["vp-move-guest"]
        dom = host.conn.lookupByUUIDString(uuid)
        assert dom.isActive()
        assert_on_ovs(host, dom, interface(dom))
        assert_on_ovs(host, dom, interface(dom, libvirt.VIR_DOMAIN_XML_INACTIVE))
        assert_tap_on_ovs(host, dom)
        entry = metadata_entry(dom)
        assert (entry.get("network"), entry.get("interfaceid")) == ("red", INTERFACE_ID)
        pinger.wait_reply(after=pinger.mark(), timeout=RESUME_DEADLINE)
        lost.append(("legacy -> ovs", pinger.since(mark)))
        # moved: the same change again finds nothing to do
        assert guests_on_moving_networks(host.conn, m["legacy"], m["ovs"]) == []

        # ovs VLAN 100 -> 200 -> 100: device updates, the guest never paused
        for there, back in (("ovs", "ovs200"), ("ovs200", "ovs")):
            (planned,) = guests_on_moving_networks(host.conn, m[there], m[back])
            assert planned.method == UPDATE
            move_guests(host.conn, m[there], m[back])
            tag = "200" if back == "ovs200" else str(VLAN)
            assert host.ovs.get("Port", TAP, "tag") == tag
            for flags in (0, libvirt.VIR_DOMAIN_XML_INACTIVE):
                assert [t.get("id") for t in interface(dom, flags).iterfind("vlan/tag")] == [tag]
        assert host.conn.lookupByUUIDString(uuid).ID() == dom.ID()  # the same QEMU
        assert_tap_on_ovs(host, dom)
        mark = pinger.mark()
        pinger.wait_reply(after=mark, timeout=RESUME_DEADLINE)

        # ovs -> legacy
        mark = pinger.mark()
        move_guests(host.conn, m["ovs"], m["legacy"], save_dir=tmp_path)
        dom = host.conn.lookupByUUIDString(uuid)
        assert_on_red(host, interface(dom))
        assert_on_red(host, interface(dom, libvirt.VIR_DOMAIN_XML_INACTIVE))
        assert_tap_on_red(host)
        assert host.ovs.vsctl("--bare", "--columns=name", "find", "Interface",
                              f"external_ids:iface-id={INTERFACE_ID}") == ""
        # the metadata still remembers the interfaceid for the next OVS host
        assert metadata_entry(dom).get("interfaceid") == INTERFACE_ID
        pinger.wait_reply(after=pinger.mark(), timeout=RESUME_DEADLINE)
        lost.append(("ovs -> legacy", pinger.since(mark)))

        # the guest kept running: it booted once
        assert count_lines(console.read_text(errors="replace"), ready) == 1
        assert list(tmp_path.glob("*.save")) == []
    # destroyed and undefined: nothing of it left on either switch
    assert host.netns.link(TAP) is None
    assert TAP not in host.ovs.ports("br-int")
    for move, gap in lost:
        report(f"{move}: {gap.lost} of {gap.sent} pings lost, outage {gap.outage:.3f} s")


BLUE_MAC = "fa:16:3e:b1:0e:01"
BLUE_TAP = "tapblue0"


def test_failed_second_guest_moves_the_first_back(
        host: BothSwitches, image: GuestImage, tmp_path: Path,
        report: Callable[[str], None]) -> None:
    host.netns.add_bridge("blue")
    try:
        _failed_second_guest(host, image, tmp_path, report)
    finally:
        host.netns.delete_link("blue")


def _failed_second_guest(host: BothSwitches, image: GuestImage, tmp_path: Path,
                         report: Callable[[str], None]) -> None:
    m = maps(tmp_path,
             old=LINUX_MAP + '[networks.blue]\nswitch = "legacy"\nbridge = "blue"\n',
             new=OVS_MAP + '[networks.blue]\nswitch = "ovs"\nbridge = "br-missing"\n')
    driver = GenericVIFDriver()
    first = guest_domain("vp-move-first", image, driver.interface_xml(ON_RED),
                         ip=f"{GUEST_IP}/24", peer=host.peer_ip,
                         serial=tmp_path / "first.console",
                         metadata=driver.metadata_xml([IDENTITY]))
    blue = etree.fromstring(
        f"<interface type='bridge'><mac address='{BLUE_MAC}'/><source bridge='blue'/>"
        f"<target dev='{BLUE_TAP}'/><model type='virtio'/></interface>")
    second = minimal_domain("vp-move-second", [blue])  # no metadata: the legacy convention
    with running(host.conn, first, persistent=False) as started1, \
            running(host.conn, second, persistent=False) as started2, \
            Pinger(host.peer, GUEST_IP, interval=0.02) as pinger:
        pinger.wait_reply(timeout=GUEST_DEADLINE)
        uuid1, uuid2 = started1.UUIDString(), started2.UUIDString()
        planned = {g.domain: g for g in guests_on_moving_networks(host.conn, m["old"], m["new"])}
        order = [planned["vp-move-first"], planned["vp-move-second"]]
        mark = pinger.mark()
        with pytest.raises(GuestMoveError) as caught:
            move_guests(host.conn, m["old"], m["new"], save_dir=tmp_path, moves=order)
        message = str(caught.value)
        assert f"domain 'vp-move-second': interface(s) {BLUE_MAC}: libvirt refused the new " \
            "switch: " in message
        assert "br-missing" in message
        assert f"rolled back: vp-move-first interfaces {ON_RED.mac}" in message
        assert "NOT rolled back" not in message
        dom1 = host.conn.lookupByUUIDString(uuid1)
        dom2 = host.conn.lookupByUUIDString(uuid2)
        assert dom1.isActive()
        assert dom2.isActive()
        assert_on_red(host, interface(dom1))
        assert_tap_on_red(host)
        (blue_live,) = etree.fromstring(dom2.XMLDesc()).iterfind("devices/interface")
        assert blue_live.find("source").get("bridge") == "blue"
        assert blue_live.find("virtualport") is None
        assert host.netns.link(BLUE_TAP)["master"] == "blue"
        assert host.ovs.ports("br-int") == ["int-up"]
        pinger.wait_reply(after=pinger.mark(), timeout=RESUME_DEADLINE)
        gap = pinger.since(mark)
        assert list(tmp_path.glob("*.save")) == []
    report(f"moved and moved back: {gap.lost} of {gap.sent} pings lost, "
           f"outage {gap.outage:.3f} s")


@pytest.fixture(scope="module")
def hooked(_no_leaks: None, tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[tuple[BothSwitches, Path]]:
    """The same kind of host with vifplug's qemu hook installed, reading the map at the path."""
    path = tmp_path_factory.mktemp("hooked") / "networks.toml"
    path.write_text(LINUX_MAP)
    for built in entered(both_switches(networks=path)):
        yield built, path


def test_the_hook_rewrites_a_restore_with_its_map(
        hooked: tuple[BothSwitches, Path], tmp_path: Path) -> None:
    """libvirt runs the qemu hook (``restore begin``) on the definition vifplug restores: with
    the old map still at the hook's path the guest would land back on its old switch, which
    move_guests detects and rolls back; with the new map in place the move holds."""
    host, path = hooked
    m = maps(tmp_path, legacy=LINUX_MAP, ovs=OVS_MAP)
    driver = GenericVIFDriver()
    xml = minimal_domain("vp-move-hooked", [driver.interface_xml(ON_RED)],
                         metadata=driver.metadata_xml([IDENTITY]))
    with running(host.conn, xml, persistent=False) as started:
        uuid = started.UUIDString()
        path.write_text(LINUX_MAP)  # the hook's map: still the old one
        with pytest.raises(GuestMoveError) as caught:
            move_guests(host.conn, m["legacy"], m["ovs"], save_dir=tmp_path)
        message = str(caught.value)
        assert f"domain 'vp-move-hooked': interface {ON_RED.mac} (network 'red'): libvirt " \
            "restored it on bridge bridge=red, not on bridge bridge=br-int" in message
        assert "was the qemu hook's network map (restore begin) the new one?" in message
        assert f"rolled back: vp-move-hooked interfaces {ON_RED.mac}" in message
        dom = host.conn.lookupByUUIDString(uuid)
        assert dom.isActive()
        assert_on_red(host, interface(dom))
        assert_tap_on_red(host)

        path.write_text(OVS_MAP)  # the new map in place first, as a switch transition does
        move_guests(host.conn, m["legacy"], m["ovs"], save_dir=tmp_path)
        dom = host.conn.lookupByUUIDString(uuid)
        assert_on_ovs(host, dom, interface(dom))
        assert_tap_on_ovs(host, dom)
        assert list(tmp_path.glob("*.save")) == []


def test_bridge_rename_is_a_device_update_that_records_the_network(
        host: BothSwitches, tmp_path: Path) -> None:
    """A guest found by the legacy convention (no vifplug metadata, ``<source bridge='red'>``)
    whose network moves to another Linux bridge: one live device update, and vifplug's live
    metadata now names its network (setMetadata)."""
    import libvirt

    m = maps(tmp_path, legacy=LINUX_MAP, renamed=LINUX_MAP.replace('bridge = "red"',
                                                                    'bridge = "red2"'))
    host.netns.add_bridge("red2")
    xml = minimal_domain("vp-move-rename", [GenericVIFDriver().interface_xml(ON_RED)])
    try:
        with running(host.conn, xml, persistent=False) as dom:
            with pytest.raises(libvirt.libvirtError):
                dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NS)
            (planned,) = guests_on_moving_networks(host.conn, m["legacy"], m["renamed"])
            assert planned.method == UPDATE
            before = dom.ID()
            move_guests(host.conn, m["legacy"], m["renamed"], save_dir=tmp_path)
            assert dom.ID() == before  # the same QEMU: not saved and restored
            assert interface(dom).find("source").get("bridge") == "red2"
            assert host.netns.link(TAP)["master"] == "red2"
            entry = metadata_entry(dom)
            assert (entry.get("mac"), entry.get("network")) == (ON_RED.mac, "red")
    finally:
        host.netns.delete_link("red2")
