"""The hybrid path of a guest move (vifplug.guests, ``hybrid=True``: what ``host apply
--guests=move`` plans): a Linux-bridge interface moving to OVS is plugged a qbr/qvb/qvo of its
own on the new OVS bridge and updated live onto its qbr; moving back is an update onto the
Linux bridge, after which the qbr vifplug derives for the interface is removed — and nobody
else's. The real thing: tests/integration/test_switch_transition.py."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.unit.test_guest_moves import (
    GREEN_DIRECT,
    IID,
    MAC,
    MAC3,
    RED_LEGACY,
    RED_OVN,
    RED_OVS,
    FakeConn,
    direct_iface,
    domain,
    legacy_iface,
    nmap,
    ovs_iface,
)
from vifplug.guests import (
    HYBRID,
    HYBRID_NAMESPACE,
    RESTORE,
    UPDATE,
    GuestDomain,
    GuestMoveError,
    move_guests,
    plan_moves,
)
from vifplug.host import Host
from vifplug.host.fake import FakeNetlink, FakeOvsdb
from vifplug.netmap import OvsNetwork

UUID = "2b1e6f5a-0c1d-4e2f-8a9b-0c1d2e3f4a5b"


def with_uuid(xml: str) -> str:
    return xml.replace("<name>", f"<uuid>{UUID}</uuid><name>", 1)


def on_red(**kwargs: object) -> GuestDomain:
    return GuestDomain("web1", with_uuid(domain("web1", legacy_iface(mac=MAC, tap="vnet0"),
                                                metadata={MAC: "red"}, iid={MAC: IID})))


def test_legacy_to_ovs_plugs_a_qbr_and_updates_onto_it() -> None:
    (move,) = plan_moves([on_red()], nmap(RED_LEGACY), nmap(RED_OVS), hybrid=True)
    assert move.method == HYBRID
    assert move.uuid == UUID
    (iface,) = move.interfaces
    vif = iface.plug
    assert vif is not None
    assert (vif.id, vif.ovs.interface_id, vif.mac) == (IID, IID, MAC)
    assert (vif.network.bridge, vif.network.vlan, vif.plug) == ("br-int", 100, "hybrid")
    assert vif.qbr_name == "qbr" + IID[:11]
    new = ET.fromstring(iface.new_xml)  # noqa: S314 - our own output
    old = ET.fromstring(iface.old_xml)  # noqa: S314
    assert new.find("source").attrib == {"bridge": vif.qbr_name}  # type: ignore[union-attr]
    assert new.find("virtualport") is None
    assert new.find("vlan") is None
    # everything else as it was: the TAP, model, alias
    new.find("source").set("bridge", "red")  # type: ignore[union-attr]
    assert ET.tostring(new) == ET.tostring(old)
    assert iface.unplug is None


def test_without_hybrid_the_same_move_is_a_save_and_restore() -> None:
    (move,) = plan_moves([on_red()], nmap(RED_LEGACY), nmap(RED_OVS))
    assert move.method == RESTORE
    assert move.interfaces[0].plug is None


def test_ovn_takes_the_hybrid_path_with_its_port_identity() -> None:
    (move,) = plan_moves([on_red()], nmap(RED_LEGACY), nmap(RED_OVN), hybrid=True)
    assert move.method == HYBRID
    vif = move.interfaces[0].plug
    assert vif is not None
    assert (vif.network.bridge, vif.network.vlan, vif.ovs.interface_id) == ("br-int", None, IID)


def test_a_trunk_goes_on_the_qvo() -> None:
    trunked = OvsNetwork("red", "br-int", None, (10, 20))
    (move,) = plan_moves([on_red()], nmap(RED_LEGACY), nmap(trunked), hybrid=True)
    vif = move.interfaces[0].plug
    assert vif is not None
    assert (vif.network.vlan, vif.network.trunk) == (None, (10, 20))


def test_no_uuid_interfaceid_names_it_from_the_mac() -> None:
    guest = GuestDomain("web1", domain("web1", legacy_iface(mac=MAC), metadata={MAC: "red"}))
    (move,) = plan_moves([guest], nmap(RED_LEGACY), nmap(RED_OVS), hybrid=True)
    vif = move.interfaces[0].plug
    assert vif is not None
    assert vif.id == str(uuid.uuid5(HYBRID_NAMESPACE, MAC))
    again = plan_moves([guest], nmap(RED_LEGACY), nmap(RED_OVS), hybrid=True)[0]
    assert again.interfaces[0].plug == vif  # the same names every time


def test_a_guest_with_an_interface_no_update_can_move_is_restored_whole() -> None:
    # red moves by the hybrid path, but blue's OVS virtualport → Linux bridge cannot be updated
    blue_ovs = OvsNetwork("blue", "br-int", 7)
    guest = GuestDomain("web1", domain(
        "web1", legacy_iface(mac=MAC), ovs_iface(mac=MAC3, vlan=7),
        metadata={MAC: "red", MAC3: "blue"}, iid={MAC: IID, MAC3: IID}))
    old = nmap(RED_LEGACY, blue_ovs)
    new = nmap(RED_OVS, RED_LEGACY._replace(name="blue", bridge="blue"))
    (move,) = plan_moves([guest], old, new, hybrid=True)
    assert move.method == RESTORE
    assert all(i.plug is None for i in move.interfaces)


def moved_back(qbr: str, iid: str | None = IID) -> GuestDomain:
    return GuestDomain("web1", with_uuid(domain(
        "web1", legacy_iface(mac=MAC, bridge=qbr, tap="vnet0"), direct_iface(),
        metadata={MAC: "red", MAC3: "green"}, iid={MAC: iid} if iid else None)))


def test_back_to_legacy_is_an_update_then_the_qbr_goes() -> None:
    qbr = "qbr" + IID[:11]
    (move,) = plan_moves([moved_back(qbr)], nmap(RED_OVS, GREEN_DIRECT),
                         nmap(RED_LEGACY, GREEN_DIRECT), hybrid=True)
    assert move.method == UPDATE
    (iface,) = move.interfaces
    assert ET.fromstring(iface.new_xml).find("source").get("bridge") == "red"  # type: ignore[union-attr]  # noqa: S314
    assert iface.unplug is not None
    assert (iface.unplug.qbr_name, iface.unplug.qvb_name, iface.unplug.qvo_name) == (
        qbr, "qvb" + IID[:11], "qvo" + IID[:11])


def test_a_qbr_vifplug_would_not_derive_is_left_alone() -> None:
    (move,) = plan_moves([moved_back("qbr0123456789a")], nmap(RED_OVS, GREEN_DIRECT),
                         nmap(RED_LEGACY, GREEN_DIRECT), hybrid=True)
    assert move.interfaces[0].unplug is None
    # a qbr named from the MAC (an interface that carried no UUID interfaceid) is vifplug's
    qbr = "qbr" + str(uuid.uuid5(HYBRID_NAMESPACE, MAC))[:11]
    (move,) = plan_moves([moved_back(qbr, iid=None)], nmap(RED_OVS, GREEN_DIRECT),
                         nmap(RED_LEGACY, GREEN_DIRECT), hybrid=True)
    assert move.interfaces[0].unplug is not None


# --- apply on a fake connection and a fake host ---------------------------------------------------


@pytest.fixture
def fake_libvirt() -> None:
    pytest.importorskip("libvirt")


def fake_host(tmp_path: Path) -> tuple[FakeNetlink, FakeOvsdb, Host]:
    netlink, ovsdb = FakeNetlink(), FakeOvsdb()
    ovsdb.add_bridge("br-int")
    return netlink, ovsdb, Host.using(netlink, ovsdb, lock_dir=tmp_path / "locks")


QBR, QVB, QVO = (prefix + IID[:11] for prefix in ("qbr", "qvb", "qvo"))


def test_hybrid_plugs_then_updates_then_back_removes_it(fake_libvirt: None,
                                                        tmp_path: Path) -> None:
    netlink, ovsdb, host = fake_host(tmp_path)
    conn = FakeConn({"web1": on_red().live_xml}, missing=set())
    moves = plan_moves(read_guests_of(conn), nmap(RED_LEGACY), nmap(RED_OVS), hybrid=True)
    move_guests(conn, nmap(RED_LEGACY), nmap(RED_OVS), moves=moves, save_dir=tmp_path,
                host=host)
    assert conn.log[0] == f"update web1 {QBR}"
    assert netlink.get(QVB).master == netlink.get(QBR).index  # type: ignore[union-attr]
    port = ovsdb.rows["Port"][QVO]
    assert port["tag"] == [100]
    ids = dict(ovsdb.rows["Interface"][QVO]["external_ids"])  # type: ignore[arg-type]
    assert (ids["iface-id"], ids["attached-mac"], ids["vm-uuid"]) == (IID, MAC, UUID)

    # the guest is on its qbr now; moving back removes the hybrid path after the update
    conn.doms["web1"].xml = conn.doms["web1"].xml.replace("bridge='red'", f"bridge='{QBR}'")
    move_guests(conn, nmap(RED_OVS), nmap(RED_LEGACY), save_dir=tmp_path, host=host)
    assert "update web1 red" in conn.log[1:]
    assert netlink.get(QBR) is None
    assert netlink.get(QVB) is None
    assert QVO not in ovsdb.rows["Port"]


def test_a_refused_update_unplugs_the_hybrid_path(fake_libvirt: None, tmp_path: Path) -> None:
    netlink, ovsdb, host = fake_host(tmp_path)
    conn = FakeConn({"web1": on_red().live_xml}, missing={QBR})
    with pytest.raises(GuestMoveError) as caught:
        move_guests(conn, nmap(RED_LEGACY), nmap(RED_OVS), save_dir=tmp_path, host=host,
                    moves=plan_moves(read_guests_of(conn), nmap(RED_LEGACY), nmap(RED_OVS),
                                     hybrid=True))
    assert f"rolled back: web1 hybrid path(s) {QBR}" in str(caught.value)
    assert netlink.get(QBR) is None
    assert QVO not in ovsdb.rows["Port"]


def test_someone_elses_device_on_the_qbr_keeps_it(fake_libvirt: None, tmp_path: Path) -> None:
    netlink, ovsdb, host = fake_host(tmp_path)
    conn = FakeConn({"web1": on_red().live_xml}, missing=set())
    move_guests(conn, nmap(RED_LEGACY), nmap(RED_OVS), save_dir=tmp_path, host=host,
                moves=plan_moves(read_guests_of(conn), nmap(RED_LEGACY), nmap(RED_OVS),
                                 hybrid=True))
    netlink.add_device("tapother", "tun", master=netlink.get(QBR).index)  # type: ignore[union-attr]
    conn.doms["web1"].xml = conn.doms["web1"].xml.replace("bridge='red'", f"bridge='{QBR}'")
    move_guests(conn, nmap(RED_OVS), nmap(RED_LEGACY), save_dir=tmp_path, host=host)
    assert netlink.get(QBR) is not None
    assert QVO in ovsdb.rows["Port"]


def test_moving_off_a_qbr_without_a_host_is_refused_before_anything(
        fake_libvirt: None, tmp_path: Path) -> None:
    conn = FakeConn({"web1": moved_back(QBR).live_xml}, missing=set())
    with pytest.raises(GuestMoveError, match="needs the host"):
        move_guests(conn, nmap(RED_OVS, GREEN_DIRECT), nmap(RED_LEGACY, GREEN_DIRECT),
                    save_dir=tmp_path)
    assert conn.log == []


def read_guests_of(conn: FakeConn) -> list[GuestDomain]:
    return [GuestDomain(dom.name(), dom.xml) for dom in conn.doms.values()]


# --- the mark the qemu hook's release reads -------------------------------------------------------


def test_the_move_marks_the_metadata_and_the_hook_reads_it() -> None:
    from vifplug.hook import hybrid_paths

    (move,) = plan_moves([on_red()], nmap(RED_LEGACY), nmap(RED_OVS), hybrid=True)
    assert move.metadata is not None
    marked = move.metadata[1]
    assert f'hybrid="{QBR}"' in marked
    live = with_uuid(domain("web1", legacy_iface(mac=MAC, bridge=QBR))).replace(
        "<memory>", f"<metadata>{marked}</metadata><memory>", 1)
    assert hybrid_paths(live.encode()) == [QBR]
    # not a qbr vifplug makes: ignored
    assert hybrid_paths(live.replace(QBR, "eth0").encode()) == []
    assert hybrid_paths(live.replace(QBR, "qbr../../etc/x").encode()) == []


def test_a_rewrite_drops_the_mark() -> None:
    from vifplug.hook import hybrid_paths, rewrite

    (move,) = plan_moves([on_red()], nmap(RED_LEGACY), nmap(RED_OVS), hybrid=True)
    assert move.metadata is not None
    live = with_uuid(domain("web1", legacy_iface(mac=MAC, bridge=QBR))).replace(
        "<memory>", f"<metadata>{move.metadata[1]}</metadata><memory>", 1)
    # moving back, or arriving on another host: the interface is not on the qbr any more
    assert hybrid_paths(rewrite(live, nmap(RED_LEGACY)).encode()) == []
    assert hybrid_paths(rewrite(live, nmap(RED_OVS)).encode()) == []
    (back,) = plan_moves([GuestDomain("web1", live)], nmap(RED_OVS), nmap(RED_LEGACY),
                         hybrid=True)
    assert back.metadata is not None
    assert "hybrid=" not in back.metadata[1]
