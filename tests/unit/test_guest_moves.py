"""Planning guest moves (vifplug.guests.plan_moves), without libvirt: which interfaces of which
running guests a map change moves, what each becomes (the hook's rewrite, limited to the moving
networks), whether libvirt 9.0 can apply it as a device update or needs a save and restore, and
what happens to vifplug's metadata and a persistent definition. The apply (move_guests) runs
against a fake connection here for its order and rollback;
tests/integration/test_guest_moves_real.py moves a real guest on a real libvirtd."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vifplug import guests
from vifplug.guests import (
    RESTORE,
    UPDATE,
    GuestDomain,
    GuestMoveError,
    GuestsOnMovingNetworks,
    live_updatable,
    move_guests,
    moving_networks,
    plan_moves,
    refuse_guests,
)
from vifplug.netmap import (
    DirectNetwork,
    LegacyNetwork,
    MappedNetwork,
    NetworkMap,
    OvnNetwork,
    OvsNetwork,
)

NS = "http://vifplug.org/xmlns/vifplug/1"
MAC, MAC2, MAC3 = "fa:16:3e:00:00:01", "fa:16:3e:00:00:02", "fa:16:3e:00:00:03"
IID = "c0ffee00-1d2e-4f3a-9b8c-7d6e5f4a3b2c"


def nmap(*networks: MappedNetwork) -> NetworkMap:
    return NetworkMap("/etc/vifplug/networks.toml", {n.name: n for n in networks})


RED_LEGACY = LegacyNetwork("red", "red")
RED_OVS = OvsNetwork("red", "br-int", 100)
RED_OVS_200 = OvsNetwork("red", "br-int", 200)
RED_OVN = OvnNetwork("red", "ls-red", "br-int")
BLUE_LEGACY = LegacyNetwork("blue", "blue")
GREEN_DIRECT = DirectNetwork("green", "eth2", "vepa")


def legacy_iface(mac: str = MAC, bridge: str = "red", tap: str = "tap0") -> str:
    return (f"<interface type='bridge'><mac address='{mac}'/><source bridge='{bridge}'/>"
            f"<target dev='{tap}'/><model type='virtio'/><alias name='net0'/></interface>")


def ovs_iface(mac: str = MAC, bridge: str = "br-int", vlan: int | None = 100,
              iid: str = IID) -> str:
    tag = f"<vlan><tag id='{vlan}'/></vlan>" if vlan is not None else ""
    return (f"<interface type='bridge'><mac address='{mac}'/><source bridge='{bridge}'/>{tag}"
            f"<virtualport type='openvswitch'><parameters interfaceid='{iid}'/></virtualport>"
            "<target dev='tap0'/><model type='virtio'/></interface>")


def direct_iface(mac: str = MAC3) -> str:
    return (f"<interface type='direct'><mac address='{mac}'/><source dev='eth2' mode='vepa'/>"
            "<model type='virtio'/></interface>")


def domain(name: str, *interfaces: str, metadata: dict[str, str] | None = None,
           iid: dict[str, str] | None = None) -> str:
    meta = ""
    if metadata:
        entries = "".join(
            f"<vifplug:interface mac='{mac}' network='{net}'"
            f"{f' interfaceid={chr(39)}{iid[mac]}{chr(39)}' if iid and mac in iid else ''}/>"
            for mac, net in metadata.items())
        meta = (f"<metadata><vifplug:interfaces xmlns:vifplug='{NS}'>{entries}"
                "</vifplug:interfaces></metadata>")
    return (f"<domain type='qemu'><name>{name}</name>{meta}<memory>131072</memory>"
            f"<devices>{''.join(interfaces)}<memballoon model='none'/></devices></domain>")


def parse(xml: str) -> ET.Element:
    return ET.fromstring(xml)  # noqa: S314 - the tests' own XML


def describe(xml: str) -> tuple[str | None, str | None, str | None, str | None, str | None]:
    """(type, bridge, virtualport type, interfaceid, vlan tags) of an <interface>."""
    el = parse(xml)
    source, port = el.find("source"), el.find("virtualport/parameters")
    vlan = el.find("vlan")
    return (el.get("type"), source.get("bridge") if source is not None else None,
            el.find("virtualport").get("type") if el.find("virtualport") is not None else None,
            port.get("interfaceid") if port is not None else None,
            ",".join(t.get("id", "") for t in vlan.iterfind("tag")) if vlan is not None
            else None)


# --- which networks move ----------------------------------------------------------------------


def test_moving_networks_are_those_switched_differently() -> None:
    old = nmap(RED_LEGACY, BLUE_LEGACY, GREEN_DIRECT)
    new = nmap(RED_OVS, BLUE_LEGACY, OvsNetwork("yellow", "br-int", 7))
    assert moving_networks(old, new) == {"red", "green", "yellow"}
    assert moving_networks(old, old) == frozenset()


# --- the table: one guest, one move each --------------------------------------------------------

CASES: dict[str, tuple[NetworkMap, NetworkMap, str, tuple[Any, ...], str]] = {
    # name: old map, new map, domain, expected new interface (describe), method
    "legacy to ovs (metadata identity)": (
        nmap(RED_LEGACY), nmap(RED_OVS),
        domain("g", legacy_iface(), metadata={MAC: "red"}, iid={MAC: IID}),
        ("bridge", "br-int", "openvswitch", IID, "100"), RESTORE),
    "legacy to ovs (legacy convention, no metadata)": (
        nmap(RED_LEGACY), nmap(RED_OVS), domain("g", legacy_iface()),
        ("bridge", "br-int", "openvswitch", None, "100"), RESTORE),
    "ovs to legacy": (
        nmap(RED_OVS), nmap(RED_LEGACY), domain("g", ovs_iface(), metadata={MAC: "red"}),
        ("bridge", "red", None, None, None), RESTORE),
    "ovs vlan change": (
        nmap(RED_OVS), nmap(RED_OVS_200), domain("g", ovs_iface(), metadata={MAC: "red"}),
        ("bridge", "br-int", "openvswitch", IID, "200"), UPDATE),
    "ovs untagged to vlan": (
        nmap(OvsNetwork("red", "br-int")), nmap(RED_OVS),
        domain("g", ovs_iface(vlan=None), metadata={MAC: "red"}),
        ("bridge", "br-int", "openvswitch", IID, "100"), UPDATE),
    "ovs to another ovs bridge": (
        nmap(RED_OVS), nmap(OvsNetwork("red", "br-ex", 100)),
        domain("g", ovs_iface(), metadata={MAC: "red"}),
        ("bridge", "br-ex", "openvswitch", IID, "100"), RESTORE),
    "ovs to ovn": (
        nmap(RED_OVS), nmap(RED_OVN), domain("g", ovs_iface(), metadata={MAC: "red"}),
        ("bridge", "br-int", "openvswitch", IID, None), UPDATE),
    "legacy to ovn": (
        nmap(RED_LEGACY), nmap(RED_OVN),
        domain("g", legacy_iface(), metadata={MAC: "red"}, iid={MAC: IID}),
        ("bridge", "br-int", "openvswitch", IID, None), RESTORE),
    "legacy bridge renamed": (
        nmap(RED_LEGACY), nmap(LegacyNetwork("red", "br-red")),
        domain("g", legacy_iface(), metadata={MAC: "red"}),
        ("bridge", "br-red", None, None, None), UPDATE),
    "legacy to direct": (
        nmap(RED_LEGACY), nmap(DirectNetwork("red", "eth3", "bridge")),
        domain("g", legacy_iface(), metadata={MAC: "red"}),
        ("direct", None, None, None, None), RESTORE),
}


@pytest.mark.parametrize("case", list(CASES))
def test_plan_one_interface(case: str) -> None:
    old, new, xml, expected, method = CASES[case]
    (move,) = plan_moves([GuestDomain("g", xml)], old, new)
    (changed,) = move.interfaces
    assert (move.domain, changed.mac, changed.network) == ("g", MAC, "red")
    assert describe(changed.new_xml) == expected
    assert describe(changed.old_xml) != expected
    assert move.method == method
    assert parse(changed.new_xml).find("target").get("dev") == "tap0"  # the TAP keeps its name
    assert move.pairs() == [("g", changed.old_xml, changed.new_xml)]
    assert move.config is None  # transient


def test_nothing_moves_when_no_network_changes_switch() -> None:
    xml = domain("g", legacy_iface(), ovs_iface(MAC2), metadata={MAC: "red", MAC2: "blue"})
    same = nmap(RED_LEGACY, OvsNetwork("blue", "br-int", 5))
    assert plan_moves([GuestDomain("g", xml)], same, same) == []


def test_only_interfaces_on_moving_networks_change() -> None:
    """red moves; blue stays a Linux bridge, green stays macvtap, and an interface that is
    nobody's (no metadata, a bridge no map names) stays: each exactly as it was."""
    old = nmap(RED_LEGACY, BLUE_LEGACY, GREEN_DIRECT)
    new = nmap(RED_OVS, BLUE_LEGACY, GREEN_DIRECT)
    blue = legacy_iface(MAC2, bridge="blue", tap="tap1")
    foreign = legacy_iface("fa:16:3e:00:00:09", bridge="virbr0", tap="vnet9")
    xml = domain("g", legacy_iface(), blue, direct_iface(), foreign,
                 metadata={MAC2: "blue", MAC3: "green"})
    (move,) = plan_moves([GuestDomain("g", xml)], old, new)
    assert [i.mac for i in move.interfaces] == [MAC]
    after = {i.find("mac").get("address"): ET.canonicalize(ET.tostring(i, encoding="unicode"),
                                                          strip_text=True)
             for i in parse(move.live_xml).iterfind("devices/interface")}
    assert after[MAC3] == ET.canonicalize(direct_iface(), strip_text=True)
    assert after[MAC2] == ET.canonicalize(blue, strip_text=True)
    assert after["fa:16:3e:00:00:09"] == ET.canonicalize(foreign, strip_text=True)


def test_a_guest_on_direct_only_is_not_planned() -> None:
    old, new = nmap(RED_LEGACY, GREEN_DIRECT), nmap(RED_OVS, GREEN_DIRECT)
    xml = domain("only-direct", direct_iface(), metadata={MAC3: "green"})
    assert plan_moves([GuestDomain("only-direct", xml)], old, new) == []


def test_non_vifplug_guest_is_not_planned() -> None:
    xml = domain("foreign", legacy_iface(bridge="virbr0"))
    assert plan_moves([GuestDomain("foreign", xml)], nmap(RED_LEGACY), nmap(RED_OVS)) == []


def test_metadata_gains_the_legacy_convention_entry() -> None:
    (move,) = plan_moves([GuestDomain("g", domain("g", legacy_iface()))], nmap(RED_LEGACY),
                         nmap(RED_OVS))
    assert move.metadata is not None
    old_meta, new_meta = move.metadata
    assert old_meta is None
    (entry,) = parse(new_meta)
    assert (entry.get("mac"), entry.get("network")) == (MAC, "red")


def test_metadata_unchanged_when_the_rewrite_adds_nothing() -> None:
    xml = domain("g", ovs_iface(), metadata={MAC: "red"}, iid={MAC: IID})
    (move,) = plan_moves([GuestDomain("g", xml)], nmap(RED_OVS), nmap(RED_LEGACY))
    assert move.metadata is None


def test_persistent_guest_gets_its_definition_rewritten_too() -> None:
    live = domain("p", legacy_iface(), metadata={MAC: "red"}, iid={MAC: IID})
    config = domain("p", legacy_iface().replace("<alias name='net0'/>", ""),
                    metadata={MAC: "red"}, iid={MAC: IID})
    (move,) = plan_moves([GuestDomain("p", live, config)], nmap(RED_LEGACY), nmap(RED_OVS))
    assert move.config is not None
    old_config, new_config = move.config
    assert old_config == config
    (new_iface,) = parse(new_config).iterfind("devices/interface")
    assert describe(ET.tostring(new_iface, encoding="unicode")) == \
        ("bridge", "br-int", "openvswitch", IID, "100")


def test_persistent_guest_whose_definition_is_already_there() -> None:
    """The live guest moves; its persistent definition already names the new switch (an
    operator edited it): nothing to define."""
    live = domain("p", legacy_iface(), metadata={MAC: "red"}, iid={MAC: IID})
    config = domain("p", ovs_iface(), metadata={MAC: "red"}, iid={MAC: IID})
    (move,) = plan_moves([GuestDomain("p", live, config)], nmap(RED_LEGACY), nmap(RED_OVS))
    assert move.config is None
    assert move.interfaces


def test_several_guests_keep_their_order_and_skip_the_unaffected() -> None:
    xmls = [GuestDomain("a", domain("a", legacy_iface(), metadata={MAC: "red"})),
            GuestDomain("b", domain("b", legacy_iface(MAC2, "blue"), metadata={MAC2: "blue"})),
            GuestDomain("c", domain("c", legacy_iface(MAC3), metadata={MAC3: "red"}))]
    moves = plan_moves(xmls, nmap(RED_LEGACY, BLUE_LEGACY), nmap(RED_OVS, BLUE_LEGACY))
    assert [m.domain for m in moves] == ["a", "c"]


def test_a_guest_on_a_network_the_new_map_lacks_is_an_error_naming_it() -> None:
    xml = domain("g", legacy_iface(), metadata={MAC: "red"})
    with pytest.raises(GuestMoveError, match=rf"domain 'g': interface {MAC}: network 'red' is "
                       "not defined on this host"):
        plan_moves([GuestDomain("g", xml)], nmap(RED_LEGACY), nmap(BLUE_LEGACY))


def test_ovn_without_identity_is_an_error_naming_the_guest() -> None:
    xml = domain("g", legacy_iface(), metadata={MAC: "red"})
    with pytest.raises(GuestMoveError, match=rf"domain 'g': interface {MAC}: .*no port identity"):
        plan_moves([GuestDomain("g", xml)], nmap(RED_LEGACY), nmap(RED_OVN))


# --- what libvirt 9.0 can update live (measured, docs/src/guest-moves.md) ----------------------


@pytest.mark.parametrize(("old", "new", "expected"), [
    (legacy_iface(), legacy_iface(bridge="blue"), True),
    (ovs_iface(vlan=100), ovs_iface(vlan=200), True),
    (ovs_iface(vlan=100), ovs_iface(vlan=None), True),
    (ovs_iface(vlan=None), ovs_iface(vlan=100), True),
    (legacy_iface(), ovs_iface(), False),  # a virtualport added
    (ovs_iface(), legacy_iface(), False),  # removed
    (ovs_iface(), ovs_iface(bridge="br-ex"), False),  # a bridge change with a virtualport
    (ovs_iface(), ovs_iface(iid="11111111-2222-3333-4444-555555555555"), False),
    (legacy_iface(), legacy_iface().replace("<target", "<vlan><tag id='5'/></vlan><target"),
     False),  # a VLAN on a Linux bridge
    (legacy_iface(), direct_iface(MAC), False),
])
def test_live_updatable(old: str, new: str, expected: bool) -> None:
    assert live_updatable(old, new) is expected


def test_libvirt_constants_match_libvirt_python() -> None:
    libvirt = pytest.importorskip("libvirt")
    assert guests._AFFECT_LIVE == libvirt.VIR_DOMAIN_AFFECT_LIVE
    assert guests._AFFECT_CONFIG == libvirt.VIR_DOMAIN_AFFECT_CONFIG
    assert guests._METADATA_ELEMENT == libvirt.VIR_DOMAIN_METADATA_ELEMENT
    assert guests._XML_SECURE == libvirt.VIR_DOMAIN_XML_SECURE
    assert guests._XML_INACTIVE == libvirt.VIR_DOMAIN_XML_INACTIVE
    assert guests._SAVE_RUNNING == libvirt.VIR_DOMAIN_SAVE_RUNNING
    assert guests._SAVE_PAUSED == libvirt.VIR_DOMAIN_SAVE_PAUSED
    assert guests._STATE_PAUSED == libvirt.VIR_DOMAIN_PAUSED


# --- apply and rollback against a fake connection -----------------------------------------------


class FakeDom:
    def __init__(self, conn: FakeConn, name: str, xml: str) -> None:
        self.conn, self._name, self.xml = conn, name, xml

    def name(self) -> str:
        return self._name

    def isActive(self) -> bool:
        return True

    def isPersistent(self) -> bool:
        return False

    def XMLDesc(self, flags: int = 0) -> str:
        return self.xml

    def updateDeviceFlags(self, xml: str, flags: int) -> None:
        bridge = parse(xml).find("source").get("bridge")
        self.conn.log.append(f"update {self._name} {bridge}")
        if bridge in self.conn.missing:
            raise fake_error(f"operation failed: bridge {bridge} doesn't exist")

    def setMetadata(self, kind: int, text: str | None, key: str | None, uri: str,
                    flags: int) -> None:
        self.conn.log.append(f"metadata {self._name} {key} {uri} {text}")


class FakeConn:
    def __init__(self, domains: dict[str, str], missing: set[str]) -> None:
        self.log: list[str] = []
        self.missing = missing
        self.doms = {name: FakeDom(self, name, xml) for name, xml in domains.items()}

    def listAllDomains(self, flags: int = 0) -> list[FakeDom]:
        return list(self.doms.values())

    def lookupByName(self, name: str) -> FakeDom:
        return self.doms[name]


def fake_error(message: str) -> Exception:
    """A libvirt.libvirtError carrying ``message`` (what move_guests catches)."""
    import libvirt

    error = libvirt.libvirtError.__new__(libvirt.libvirtError)
    Exception.__init__(error, message)
    return error


@pytest.fixture
def fake_libvirt() -> None:
    pytest.importorskip("libvirt")


def _bridge_rename_guests() -> dict[str, str]:
    return {name: domain(name, legacy_iface(mac), metadata={mac: "red"})
            for name, mac in (("g1", MAC), ("g2", MAC2), ("g3", MAC3))}


def test_move_updates_every_guest_in_order(fake_libvirt: None, tmp_path: Any) -> None:
    conn = FakeConn(_bridge_rename_guests(), missing=set())
    moves = move_guests(conn, nmap(RED_LEGACY), nmap(LegacyNetwork("red", "br-red")),
                        save_dir=tmp_path)
    assert [m.domain for m in moves] == ["g1", "g2", "g3"]
    assert conn.log == ["update g1 br-red", "update g2 br-red", "update g3 br-red"]


def test_a_failed_third_guest_moves_the_first_two_back_last_first(
        fake_libvirt: None, tmp_path: Any) -> None:
    conn = FakeConn(_bridge_rename_guests(), missing=set())
    original = conn.doms["g3"].updateDeviceFlags

    def fail(xml: str, flags: int) -> None:
        original(xml, flags)
        raise fake_error("operation failed: bridge br-red doesn't exist")
    conn.doms["g3"].updateDeviceFlags = fail  # type: ignore[method-assign]
    with pytest.raises(GuestMoveError) as caught:
        move_guests(conn, nmap(RED_LEGACY), nmap(LegacyNetwork("red", "br-red")),
                    save_dir=tmp_path)
    message = str(caught.value)
    assert f"domain 'g3': interface {MAC3} (network 'red'): operation failed: bridge br-red " \
        "doesn't exist" in message
    assert f"rolled back: g2 interface {MAC2}, g1 interface {MAC}" in message
    assert "NOT rolled back" not in message
    assert conn.log == ["update g1 br-red", "update g2 br-red", "update g3 br-red",
                        "update g2 red", "update g1 red"]


def test_refuse_names_every_guest_mac_and_network(fake_libvirt: None) -> None:
    conn = FakeConn(_bridge_rename_guests(), missing=set())
    with pytest.raises(GuestsOnMovingNetworks) as caught:
        refuse_guests(conn, nmap(RED_LEGACY), nmap(RED_OVS))
    assert str(caught.value).startswith(
        f"3 running guest(s) on networks whose switch changes: g1 ({MAC} on red); "
        f"g2 ({MAC2} on red); g3 ({MAC3} on red); ")
    assert [m.domain for m in caught.value.moves] == ["g1", "g2", "g3"]
    assert conn.log == []  # refusing changes nothing


def test_refuse_is_quiet_without_guests_on_moving_networks(fake_libvirt: None) -> None:
    conn = FakeConn(_bridge_rename_guests(), missing=set())
    refuse_guests(conn, nmap(RED_LEGACY, BLUE_LEGACY), nmap(RED_LEGACY, OvsNetwork("blue", "b")))


def test_metadata_goes_to_libvirt_unqualified_with_its_key(
        fake_libvirt: None, tmp_path: Any) -> None:
    """libvirt qualifies the element itself and refuses one that declares the namespace."""
    conn = FakeConn({"g": domain("g", legacy_iface())}, missing=set())
    move_guests(conn, nmap(RED_LEGACY), nmap(LegacyNetwork("red", "br-red")),
                save_dir=tmp_path)
    assert conn.log == [
        "update g br-red",
        f'metadata g vifplug {NS} <interfaces><interface mac="{MAC}" network="red" />'
        "</interfaces>"]


# --- the save-and-restore path against a fake connection ----------------------------------------


class SavingDom(FakeDom):
    def state(self) -> list[int]:
        return [1, 0]

    def saveFlags(self, path: str, dxml: str | None, flags: int) -> None:
        self.conn.log.append(f"save {self._name}")
        self.conn.images[path] = self.xml
        Path(path).write_text("memory")


class SavingConn(FakeConn):
    def __init__(self, domains: dict[str, str], missing: set[str], *,
                 hook: Callable[[str], str] | None = None,
                 broken_restore: bool = False) -> None:
        super().__init__({}, missing)
        self.doms = {name: SavingDom(self, name, xml) for name, xml in domains.items()}
        self.images: dict[str, str] = {}
        self.hook = hook
        self.broken_restore = broken_restore

    def saveImageGetXMLDesc(self, path: str, flags: int) -> str:
        return self.images[path]

    def restoreFlags(self, path: str, dxml: str | None, flags: int) -> None:
        xml = self.images[path] if dxml is None else dxml
        if self.hook is not None:
            xml = self.hook(xml)
        (iface_el,) = parse(xml).iterfind("devices/interface")
        bridge = iface_el.find("source").get("bridge")
        name = parse(xml).find("name").text
        self.log.append(f"restore {name} {bridge}")
        if bridge in self.missing or self.broken_restore:
            raise fake_error(f"Cannot get interface MTU on '{bridge}': No such device")
        self.doms[name].xml = xml


def test_restore_moves_then_a_refused_restore_moves_back(
        fake_libvirt: None, tmp_path: Path) -> None:
    conn = SavingConn({"g1": domain("g1", legacy_iface(), metadata={MAC: "red"}),
                       "g2": domain("g2", legacy_iface(MAC2, "blue"), metadata={MAC2: "blue"})},
                      missing={"br-missing"})
    old = nmap(RED_LEGACY, BLUE_LEGACY)
    new = nmap(RED_OVS, OvsNetwork("blue", "br-missing"))
    with pytest.raises(GuestMoveError) as caught:
        move_guests(conn, old, new, save_dir=tmp_path)
    assert str(caught.value) == (
        f"domain 'g2': interface(s) {MAC2}: libvirt refused the new switch: Cannot get "
        "interface MTU on 'br-missing': No such device (the guest was restored as it was); "
        f"rolled back: g1 interfaces {MAC}")
    assert conn.log == ["save g1", "restore g1 br-int",
                        "save g2", "restore g2 br-missing", "restore g2 blue",
                        "save g1", "restore g1 red"]
    assert list(tmp_path.iterdir()) == []  # every image removed


def test_a_guest_restored_neither_way_keeps_its_image(
        fake_libvirt: None, tmp_path: Path) -> None:
    conn = SavingConn({"g": domain("g", legacy_iface(), metadata={MAC: "red"})}, set(),
                      broken_restore=True)
    conn.doms["g"].isActive = lambda: False  # type: ignore[method-assign]
    with pytest.raises(GuestMoveError, match=r"restoring it as it was failed too: .*its saved "
                       r"state is kept in .*\.save \(virsh restore "):
        move_guests(conn, nmap(RED_LEGACY), nmap(RED_OVS), save_dir=tmp_path)
    assert len(list(tmp_path.glob("g.*.save"))) == 1


def test_a_restore_the_hook_rewrote_back_is_an_error_and_moves_back(
        fake_libvirt: None, tmp_path: Path) -> None:
    """A qemu hook still holding the old map turns the restored definition back."""
    from vifplug.hook import rewrite

    conn = SavingConn({"g": domain("g", legacy_iface(), metadata={MAC: "red"}, iid={MAC: IID})},
                      set(), hook=lambda xml: rewrite(xml, nmap(RED_LEGACY)))
    with pytest.raises(GuestMoveError) as caught:
        move_guests(conn, nmap(RED_LEGACY), nmap(RED_OVS), save_dir=tmp_path)
    message = str(caught.value)
    assert message.startswith(
        f"domain 'g': interface {MAC} (network 'red'): libvirt restored it on bridge "
        f"bridge=red, not on bridge bridge=br-int, virtualport openvswitch (interfaceid={IID}), "
        "vlan 100; was the qemu hook's network map (restore begin) the new one?")
    assert message.endswith(f"rolled back: g interfaces {MAC}")
    assert conn.log == ["save g", "restore g red", "save g", "restore g red"]
