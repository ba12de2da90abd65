"""Plans are pure: the exact steps each connection asks for, and how the backends spell them."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from helpers import EXAMPLES

from vifplug import GenericVIFDriver, VifError, load_vifs
from vifplug.host import Host
from vifplug.host.netlink import check_netns
from vifplug.host.ovsdb import Snapshot, VsctlOvsdb, _json_value, check_ovsdb_url
from vifplug.plan import (
    DeleteLink,
    DeleteOvsPort,
    EnsureLinuxBridge,
    EnsureMaster,
    EnsureOvsBridge,
    EnsureOvsPort,
    EnsureTap,
    EnsureVeth,
    EnsureVlanLink,
    RequireCharDevice,
    RequireLink,
    RequireOvsBridge,
    RequirePci,
)

ID = "0f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f"
VM = "11111111-2222-3333-4444-555555555555"
EXT = (("iface-id", ID), ("iface-status", "active"), ("attached-mac", "fa:16:3e:12:34:56"))


def vif(name: str, **changes: Any) -> Any:
    data = json.loads((EXAMPLES / f"{name}.json").read_text())
    data.update(changes)
    return load_vifs(data)[0]


def test_hybrid_plan() -> None:
    plan = GenericVIFDriver().plan(vif("ovs-hybrid"), instance_uuid=VM)
    assert plan.connection == "ovs-hybrid"
    assert plan.steps == (
        RequireOvsBridge("br-int"),
        EnsureLinuxBridge("qbr0f6d3c1e-5b", mtu=1450, forward_delay=0, ageing_time=0,
                          disable_ipv6=True),
        EnsureVeth("qvb0f6d3c1e-5b", "qvo0f6d3c1e-5b", mtu=1450),
        EnsureMaster("qvb0f6d3c1e-5b", "qbr0f6d3c1e-5b"),
        EnsureOvsPort("br-int", "qvo0f6d3c1e-5b", external_ids=(*EXT, ("vm-uuid", VM)),
                      mtu_request=1450, tag=100),
    )
    assert GenericVIFDriver().unplan(vif("ovs-hybrid")).steps == (
        DeleteOvsPort("qvo0f6d3c1e-5b"), DeleteLink("qvb0f6d3c1e-5b"),
        DeleteLink("qbr0f6d3c1e-5b"))


def test_manual_plan_multiqueue_and_no_instance() -> None:
    plan = GenericVIFDriver().plan(vif("ovs-manual"))
    assert plan.steps == (
        RequireOvsBridge("br-int"),
        EnsureTap("tap0f6d3c1e-5b", mtu=1450, multi_queue=True),
        EnsureOvsPort("br-int", "tap0f6d3c1e-5b", external_ids=EXT, mtu_request=1450,
                      tag=100),
    )
    single = GenericVIFDriver().plan(vif("ovs-manual", queues=1)).steps[1]
    assert single == EnsureTap("tap0f6d3c1e-5b", mtu=1450, multi_queue=False)
    assert GenericVIFDriver().unplan(vif("ovs-manual")).steps == (
        DeleteOvsPort("tap0f6d3c1e-5b"), DeleteLink("tap0f6d3c1e-5b"))


def test_trunk_goes_to_the_port() -> None:
    port = GenericVIFDriver().plan(vif("ovs-trunk", plug="manual")).steps[-1]
    assert isinstance(port, EnsureOvsPort)
    assert (port.tag, port.trunks) == (None, (100, 200, 300))


def test_virtualport_plan_and_create_bridge() -> None:
    driver = GenericVIFDriver()
    assert driver.plan(vif("ovs-virtualport")).steps == (RequireOvsBridge("br-int"),)
    netdev = vif("ovs-virtualport", ovs={"interface_id": ID, "datapath_type": "netdev"})
    assert driver.plan(netdev, create_ovs_bridges=True).steps == (
        EnsureOvsBridge("br-int", "netdev"),)
    assert driver.unplan(netdev).steps == (DeleteOvsPort("tap0f6d3c1e-5b"),)


def test_bridge_plans() -> None:
    driver = GenericVIFDriver()
    assert driver.plan(vif("bridge")).steps == (
        RequireLink("red", kind="bridge", role="Linux bridge"),)
    assert driver.plan(vif("bridge-firewalled")).steps == (
        EnsureLinuxBridge("br-red"),
        RequireLink("eth1", role="VLAN parent device"),
        EnsureVlanLink("eth1.100", "eth1", 100),
        EnsureMaster("eth1.100", "br-red"),
    )
    assert driver.unplan(vif("bridge-firewalled")).steps == ()


@pytest.mark.parametrize(("name", "steps"), [
    ("ethernet", (EnsureTap("tap2b3c4d5e-6f", mtu=9000, multi_queue=False),)),
    ("direct", (RequireLink("eth2", role="macvtap lower device"),)),
    ("802.1qbg", (RequireLink("eth2", role="macvtap lower device"),)),
    ("802.1qbh", (RequireLink("eth2", role="macvtap lower device"),)),
    ("hostdev", (RequirePci("0000:3b:00.2"),)),
    ("vdpa", (RequireCharDevice("/dev/vhost-vdpa-0", role="vDPA device"),)),
    # isolation is libvirt's to set on the TAP it makes: nothing more to plug
    ("bridge-isolated", (RequireLink("red", kind="bridge", role="Linux bridge"),)),
])
def test_simple_plans(name: str, steps: tuple[Any, ...]) -> None:
    assert GenericVIFDriver().plan(vif(name)).steps == steps


def test_vhostuser_plan_is_a_dpdkvhostuserclient_port() -> None:
    steps = GenericVIFDriver().plan(vif("vhostuser")).steps
    port = steps[1]
    assert steps[0] == RequireOvsBridge("br-int")
    assert isinstance(port, EnsureOvsPort)
    assert port.port == "vhu3c4d5e6f-7a"
    assert port.interface_type == "dpdkvhostuserclient"
    assert dict(port.options) == {"vhost-server-path": "/var/run/openvswitch/vhu3c4d5e6f-7a"}
    without_ovs = vif("vhostuser", network={"name": "dpdk"})
    without_ovs = without_ovs.model_copy(update={"ovs": None})
    assert GenericVIFDriver().plan(without_ovs).steps == ()


def test_vhostuser_devname_names_the_ovs_port() -> None:
    """os-vif's vif_name (nova and Neutron pass it) names the OVS port; the XML has no target."""
    named = vif("vhostuser", devname="vhu-guest1")
    driver = GenericVIFDriver()
    assert driver.render(named) == driver.render(vif("vhostuser"))  # no <target> either way
    assert "<target" not in driver.render(named)
    port = driver.plan(named).steps[1]
    assert isinstance(port, EnsureOvsPort)
    assert port.port == "vhu-guest1"
    assert driver.unplan(named).steps == (DeleteOvsPort("vhu-guest1"),)
    assert driver.unplan(vif("vhostuser")).steps == (DeleteOvsPort("vhu3c4d5e6f-7a"),)


def test_plan_printing() -> None:
    text = str(GenericVIFDriver().plan(vif("ovs-hybrid"), instance_uuid=VM))
    lines = text.splitlines()
    assert lines[0] == f"VIF {ID} (ovs-hybrid):"
    assert lines[2] == ("  2. ensure Linux bridge qbr0f6d3c1e-5b (mtu 1450, forward delay 0, "
                        "ageing 0, IPv6 off)")
    assert "vm-uuid=" + VM in lines[5]
    assert "nothing to do" in str(GenericVIFDriver().plan(
        vif("vhostuser").model_copy(update={"ovs": None})))


def test_vsctl_commands_are_one_chained_invocation() -> None:
    steps = GenericVIFDriver().plan(vif("ovs-hybrid"), instance_uuid=VM).steps
    args = VsctlOvsdb.commands([s for s in steps if s.phase == "ovsdb"])
    assert args == [
        "--", "--may-exist", "add-port", "br-int", "qvo0f6d3c1e-5b",
        "--", "set", "Interface", "qvo0f6d3c1e-5b",
        f'external_ids:iface-id="{ID}"', 'external_ids:iface-status="active"',
        'external_ids:attached-mac="fa:16:3e:12:34:56"', f'external_ids:vm-uuid="{VM}"',
        "mtu_request=1450", 'type=""',
        "--", "set", "Port", "qvo0f6d3c1e-5b", "tag=100", "trunks=[]",
    ]
    assert VsctlOvsdb.commands([DeleteOvsPort("p1"), EnsureOvsBridge("br", "netdev")]) == [
        "--", "--if-exists", "del-port", "p1",
        "--", "--may-exist", "add-br", "br", "--", "set", "Bridge", "br", "datapath_type=netdev"]


def test_snapshot_decides_what_holds() -> None:
    port = EnsureOvsPort("br-int", "p1", external_ids=(("iface-id", ID),), mtu_request=1450,
                         tag=100)
    snap = Snapshot()
    assert not snap.holds(port)
    assert snap.holds(DeleteOvsPort("p1"))
    snap.add("Bridge", {"name": "br-int", "datapath_type": "netdev", "ports": ["p1"]})
    snap.add("Port", {"name": "p1", "tag": [100], "trunks": []})
    snap.add("Interface", {"name": "p1", "external_ids": {"iface-id": ID, "other": "x"},
                           "mtu_request": [1450], "type": "", "options": {}})
    assert snap.holds(port)
    assert not snap.holds(DeleteOvsPort("p1"))
    assert snap.holds(EnsureOvsBridge("br-int", "netdev"))
    assert not snap.holds(EnsureOvsBridge("br-int", "system"))
    snap.rows["Port"]["p1"]["tag"] = [200]
    assert not snap.holds(port)


def test_vsctl_json_values() -> None:
    assert _json_value(["set", []], True) == []
    assert _json_value(100, True) == [100]
    assert _json_value(["uuid", "abc"], True) == ["abc"]
    assert _json_value(["set", [["uuid", "a"], ["uuid", "b"]]], True) == ["a", "b"]
    assert _json_value(["map", [["k", "v"]]]) == {"k": "v"}
    assert _json_value("netdev") == "netdev"


@pytest.mark.parametrize("name", ["", "a/b", "..", "no such namespace here"])
def test_bad_netns_is_bad_input(name: str) -> None:
    with pytest.raises(VifError, match="--netns"):
        check_netns(name)


@pytest.mark.parametrize("url", ["", "/run/db.sock", "http://x", "unix:", "punix:/x"])
def test_bad_ovsdb_url_is_bad_input(url: str) -> None:
    with pytest.raises(VifError, match="--ovsdb"):
        check_ovsdb_url(url)
    with pytest.raises(VifError, match="--ovsdb"):
        Host(ovsdb=url)


def test_host_opens_nothing_until_used() -> None:
    host = Host(ovsdb="unix:/nonexistent.sock", ovsdb_backend="vsctl")
    assert host.scope == "host"
    host.close()  # nothing was opened: nothing to fail
    with pytest.raises(VifError, match="--ovsdb-backend"):
        Host(ovsdb_backend="carrier-pigeon")  # type: ignore[arg-type]


def test_vdpa_explained() -> None:
    from vifplug.cli import main

    out, err = io.StringIO(), io.StringIO()
    assert main(["explain", str(EXAMPLES / "vdpa.json")], stdout=out, stderr=err) == 0, err
    assert out.getvalue() == (
        "VIF 6f7a8b9c-0d1e-4f2a-8b3c-4d5e6f7a8b9c (vdpa), MAC fa:16:3e:6f:7a:8b, network "
        "'offload'\n"
        "  connection  vdpa: a virtio NIC whose data path a vDPA device implements "
        "(/dev/vhost-vdpa-N)\n"
        "  because     vif_type 'vdpa' always connects this way\n"
        "  options     firewall=no, libvirt newest\n"
        "  path        guest NIC fa:16:3e:6f:7a:8b ─ /dev/vhost-vdpa-0 (vhost-vdpa)\n"
        "  plug        check vDPA device /dev/vhost-vdpa-0 exists\n")
