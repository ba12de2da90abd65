"""plug/unplug on real devices (a netns) and a real private OVS, under both OVSDB backends.

Every connection kind with host steps: its plan is checked, applied, the devices and OVSDB rows it
made are checked against the kernel and the database, then unplug must leave the host exactly as
it was (tests/fixtures/snapshot.py). Also: backend parity (native and vsctl write identical rows),
idempotency (a second plug/unplug changes nothing; a half-plugged VIF unplugs cleanly), batches,
and the CLI as a subprocess.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures import Netns, PrivateOvs
from tests.fixtures.snapshot import HostSnapshot, links_snapshot, ovsdb_rows
from tests.functional.conftest import EXAMPLES, Env, example_data
from vifplug.driver import GenericVIFDriver
from vifplug.host import Host, MissingDeviceError, StepFailed
from vifplug.host.ovsdb import VsctlOvsdb
from vifplug.loading import vifs_from_data
from vifplug.model import Vif
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
    RequireLink,
    RequireOvsBridge,
    RequirePci,
    Step,
)

DRIVER = GenericVIFDriver()

# TUN/TAP flags (linux/if_tun.h) as /sys/class/net/<tap>/tun_flags shows them.
IFF_TAP, IFF_MULTI_QUEUE, IFF_NO_PI, IFF_VNET_HDR = 0x0002, 0x0100, 0x1000, 0x4000


# --- helpers ------------------------------------------------------------------------------------


def as_set(value: Any) -> list[Any]:
    """An OVSDB set column from ovsdb_rows (a one-element set is written bare)."""
    return sorted(value) if isinstance(value, list) else [value]


def normalized(steps: tuple[Step, ...] | list[Step]) -> list[Step]:
    """Steps with external_ids in a fixed order (their order carries no meaning)."""
    return [dataclasses.replace(step, external_ids=tuple(sorted(step.external_ids)))
            if isinstance(step, EnsureOvsPort) else step for step in steps]


def changing(steps: tuple[Step, ...]) -> list[Step]:
    """The steps a first plug changes, in the order it applies them (links, then OVSDB)."""
    return [s for s in steps if s.phase == "link"] + [s for s in steps if s.phase == "ovsdb"]


def assert_link(netns: Netns, name: str, **expected: Any) -> None:
    links = links_snapshot(netns)
    assert name in links, f"{name} does not exist in {netns.name}"
    assert {key: links[name][key] for key in expected} == expected, name


def ipv6_disabled(netns: Netns, name: str) -> bool:
    value = netns.run("cat", f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6").stdout.strip()
    return value == "1"


def tun_flags(netns: Netns, name: str) -> int:
    return int(netns.run("cat", f"/sys/class/net/{name}/tun_flags").stdout.strip(), 16)


def assert_ovs_port(env: Env, port: str, vif: Vif, instance_uuid: str | None, *,
                    mtu: int | None, tag: int | None, trunks: list[int]) -> None:
    rows = ovsdb_rows(env.ovs)
    assert port in rows["Bridge"][env.br_int]["ports"]
    assert vif.ovs is not None
    expected_ids = {"iface-id": vif.ovs.interface_id, "attached-mac": vif.mac,
                    "iface-status": "active"}
    if instance_uuid is not None:
        expected_ids["vm-uuid"] = instance_uuid
    interface = rows["Interface"][port]
    assert interface["external_ids"] == expected_ids
    assert as_set(interface["mtu_request"]) == ([] if mtu is None else [mtu])
    assert interface["type"] == ""
    assert interface["options"] == {}
    row = rows["Port"][port]
    assert as_set(row["interfaces"]) == [port]
    assert as_set(row["tag"]) == ([] if tag is None else [tag])
    assert as_set(row["trunks"]) == sorted(trunks)
    # ovs-vswitchd really opened the device (a bad datapath only shows here: ENVIRONMENT.md).
    assert env.ovs.get("Interface", port, "error") == "[]"
    assert int(env.ovs.get("Interface", port, "ofport")) > 0


def assert_same(before: HostSnapshot, after: HostSnapshot) -> None:
    assert after == before, "\n".join(after.diff(before))


def assert_missing(raised: pytest.ExceptionInfo[MissingDeviceError], device: str) -> None:
    assert raised.value.device == device
    assert device in str(raised.value)
    assert raised.value.exit_code == 2


# --- OVS: hybrid and manual ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class OvsCase:
    example: str
    changes: dict[str, Any]
    mtu: int | None  # what devices and mtu_request get
    tag: int | None
    trunks: list[int]
    multi_queue: bool = False


OVS_CASES = {
    "hybrid-vlan": OvsCase("ovs-hybrid.json", {}, 1450, 100, []),
    "hybrid-trunk-no-mtu": OvsCase("ovs-hybrid.json",
                                   {"mtu": None, "network": {"vlan": None, "trunk": [10, 20]}},
                                   None, None, [10, 20]),
    "manual-multiqueue": OvsCase("ovs-manual.json", {}, 1450, 100, [], multi_queue=True),
    "manual-trunk-one-queue": OvsCase("ovs-manual.json",
                                      {"queues": None, "mtu": 9000,
                                       "network": {"vlan": None, "trunk": [100, 200, 300]}},
                                      9000, None, [100, 200, 300]),
}


def expected_ovs_plan(vif: Vif, instance_uuid: str, case: OvsCase) -> list[Step]:
    assert vif.ovs is not None
    ids = tuple(sorted({"iface-id": vif.ovs.interface_id, "iface-status": "active",
                        "attached-mac": vif.mac, "vm-uuid": instance_uuid}.items()))
    if vif.plug == "hybrid":
        return [RequireOvsBridge("br-int"),
                EnsureLinuxBridge(vif.qbr_name, mtu=case.mtu, forward_delay=0, ageing_time=0,
                                  disable_ipv6=True),
                EnsureVeth(vif.qvb_name, vif.qvo_name, mtu=case.mtu),
                EnsureMaster(vif.qvb_name, vif.qbr_name),
                EnsureOvsPort("br-int", vif.qvo_name, external_ids=ids, mtu_request=case.mtu,
                              tag=case.tag, trunks=tuple(case.trunks))]
    return [RequireOvsBridge("br-int"),
            EnsureTap(vif.tap_name, mtu=case.mtu, multi_queue=case.multi_queue),
            EnsureOvsPort("br-int", vif.tap_name, external_ids=ids, mtu_request=case.mtu,
                          tag=case.tag, trunks=tuple(case.trunks))]


@pytest.mark.parametrize("case", list(OVS_CASES))
def test_ovs_plug_then_unplug(case: str, ovsdb_backend: str, env: Env) -> None:
    spec = OVS_CASES[case]
    vif = env.vif(spec.example, **spec.changes)
    instance_uuid = str(uuid.uuid4())
    plan = DRIVER.plan(vif, instance_uuid=instance_uuid)
    assert normalized(plan.steps) == expected_ovs_plan(vif, instance_uuid, spec)
    host = env.host(ovsdb_backend)
    before = env.snapshot()

    outcome = DRIVER.plug(vif, host, instance_uuid=instance_uuid)

    assert outcome.changed == changing(plan.steps)
    assert outcome.unchanged == [RequireOvsBridge(env.br_int)]
    assert not outcome.already_done
    mtu = spec.mtu or 1500  # the kernel's default when the VIF has none
    netns = env.netns
    if vif.plug == "hybrid":
        assert_link(netns, vif.qbr_name, kind="bridge", master=None, mtu=mtu, up=True,
                    forward_delay=0, ageing_time=0)
        assert ipv6_disabled(netns, vif.qbr_name)
        assert_link(netns, vif.qvb_name, kind="veth", master=vif.qbr_name, mtu=mtu, up=True)
        assert_link(netns, vif.qvo_name, kind="veth", master=None, mtu=mtu, up=True)
        assert vif.tap_name not in links_snapshot(netns)  # the guest TAP is libvirt's
        port = vif.qvo_name
    else:
        assert_link(netns, vif.tap_name, kind="tun", master=None, mtu=mtu, up=True,
                    tun={"pi": False, "vnet_hdr": True, "multi_queue": spec.multi_queue})
        flags = tun_flags(netns, vif.tap_name)
        assert flags & IFF_TAP
        assert flags & IFF_NO_PI
        assert flags & IFF_VNET_HDR
        assert bool(flags & IFF_MULTI_QUEUE) is spec.multi_queue
        port = vif.tap_name
    assert_ovs_port(env, port, vif, instance_uuid, mtu=spec.mtu, tag=spec.tag,
                    trunks=spec.trunks)

    unplugged = DRIVER.unplug(vif, host)

    assert unplugged.changed == list(DRIVER.unplan(vif).steps)
    assert_same(before, env.snapshot())


def test_ovs_plug_without_instance_uuid_has_no_vm_uuid(ovsdb_backend: str, env: Env) -> None:
    vif = env.vif("ovs-manual.json")
    host = env.host(ovsdb_backend)
    before = env.snapshot()
    DRIVER.plug(vif, host)
    assert_ovs_port(env, vif.tap_name, vif, None, mtu=1450, tag=100, trunks=[])
    DRIVER.unplug(vif, host)
    assert_same(before, env.snapshot())


# --- OVS virtualport: libvirt adds the port ----------------------------------------------------


def test_virtualport_plug_only_checks_the_bridge(ovsdb_backend: str, env: Env) -> None:
    vif = env.vif("ovs-virtualport.json")
    assert DRIVER.plan(vif, instance_uuid=str(uuid.uuid4())).steps == (
        RequireOvsBridge(env.br_int),)
    assert DRIVER.unplan(vif).steps == (DeleteOvsPort(vif.tap_name),)
    before = env.snapshot()

    outcome = DRIVER.plug(vif, env.host(ovsdb_backend))

    assert outcome.already_done
    assert outcome.unchanged == [RequireOvsBridge(env.br_int)]
    assert_same(before, env.snapshot())


def test_virtualport_unplug_deletes_the_port_libvirt_left(ovsdb_backend: str, env: Env) -> None:
    vif = env.vif("ovs-virtualport.json")
    before = env.snapshot()
    # What libvirtd leaves when it dies with the guest: the port, its TAP gone with QEMU.
    env.ovs.vsctl("add-port", env.br_int, vif.tap_name, "--", "set", "Interface", vif.tap_name,
                  f"external_ids:iface-id={vif.id}", "external_ids:iface-status=active",
                  f'external_ids:attached-mac="{vif.mac}"')
    assert vif.tap_name in env.ovs.ports(env.br_int)

    outcome = DRIVER.unplug(vif, env.host(ovsdb_backend))

    assert outcome.changed == [DeleteOvsPort(vif.tap_name)]
    assert_same(before, env.snapshot())


def test_virtualport_missing_bridge(ovsdb_backend: str, env: Env) -> None:
    vif = env.vif("ovs-virtualport.json", network={"bridge": "br-absent"})
    before = env.snapshot()
    with pytest.raises(MissingDeviceError) as raised:
        DRIVER.plug(vif, env.host(ovsdb_backend))
    assert_missing(raised, "br-absent")
    assert_same(before, env.snapshot())


def test_virtualport_creates_the_bridge_only_when_asked(ovsdb_backend: str, env: Env) -> None:
    bridge = f"brv{uuid.uuid4().hex[:8]}"
    env.leftovers.bridges.append(bridge)
    vif = env.vif("ovs-virtualport.json", network={"bridge": bridge},
                  ovs={"datapath_type": "netdev"})
    assert DRIVER.plan(vif, create_ovs_bridges=True).steps == (EnsureOvsBridge(bridge, "netdev"),)
    host = env.host(ovsdb_backend)
    before = env.snapshot()

    outcome = DRIVER.plug(vif, host, create_ovs_bridges=True)

    assert outcome.changed == [EnsureOvsBridge(bridge, "netdev")]
    assert ovsdb_rows(env.ovs)["Bridge"][bridge]["datapath_type"] == "netdev"
    assert env.ovs.get("Interface", bridge, "error") == "[]"
    assert int(env.ovs.get("Interface", bridge, "ofport")) >= 0  # the bridge's own: LOCAL
    assert DRIVER.plug(vif, host, create_ovs_bridges=True).already_done
    # Unplug never deletes a bridge (other guests use it): the only difference is the bridge.
    after_plug = env.snapshot()
    DRIVER.unplug(vif, host)
    assert_same(after_plug, env.snapshot())
    env.ovs.vsctl("del-br", bridge)
    assert_same(before, env.snapshot())


# --- Linux bridge ------------------------------------------------------------------------------


def test_bridge_create_bridge(env: Env) -> None:
    bridge = f"br{uuid.uuid4().hex[:8]}"
    env.leftovers.links.append(bridge)
    vif = env.vif("bridge.json", mtu=1400, network={"bridge": bridge, "create_bridge": True})
    assert DRIVER.plan(vif).steps == (EnsureLinuxBridge(bridge, mtu=1400),)
    assert DRIVER.unplan(vif).steps == ()
    host = env.host("native")
    before = env.snapshot()

    outcome = DRIVER.plug(vif, host)

    assert outcome.changed == [EnsureLinuxBridge(bridge, mtu=1400)]
    assert_link(env.netns, bridge, kind="bridge", master=None, mtu=1400, up=True)
    after_plug = env.snapshot()
    assert DRIVER.plug(vif, host).already_done
    assert_same(after_plug, env.snapshot())
    # The bridge serves the whole network: unplug leaves it (the TAP is libvirt's).
    assert DRIVER.unplug(vif, host).already_done
    assert_same(after_plug, env.snapshot())
    assert sorted(set(after_plug.links) - set(before.links)) == [bridge]


def test_bridge_create_vlan(env: Env) -> None:
    short = uuid.uuid4().hex[:6]
    bridge, parent = f"br{short}", f"up{short}"
    vlan_device = f"{parent}.100"
    env.leftovers.links.extend([vlan_device, bridge, parent])
    vif = env.vif("bridge-firewalled.json", mtu=1450,
                  network={"bridge": bridge, "interface": parent, "vlan": 100})
    vlan_step = EnsureVlanLink(vlan_device, parent, 100, mtu=1450)
    assert DRIVER.plan(vif).steps == (
        EnsureLinuxBridge(bridge, mtu=1450),
        RequireLink(parent, role="VLAN parent device"),
        vlan_step,
        EnsureMaster(vlan_device, bridge),
    )
    env.netns.add_veth(parent, parent + "p")
    before = env.snapshot()
    try:
        DRIVER.plug(vif, env.host("native"))
    except StepFailed as failed:
        if getattr(failed.cause, "code", None) != errno.EOPNOTSUPP:
            raise
        # The kernel refused the VLAN device: the bridge made before it was undone.
        failure = failed
    else:
        assert_link(env.netns, bridge, kind="bridge", mtu=1450, up=True)
        assert_link(env.netns, vlan_device, kind="vlan", master=bridge, mtu=1450, up=True)
        return
    assert failure.step == vlan_step
    assert failure.rolled_back
    assert_same(before, env.snapshot())
    pytest.skip("kernel lacks 8021q (ip link add ... type vlan: EOPNOTSUPP)")


def test_bridge_must_exist_when_not_created(env: Env) -> None:
    short = uuid.uuid4().hex[:8]
    bridge, veth = f"br{short}", f"ve{short}"
    env.leftovers.links.extend([bridge, veth])
    host = env.host("native")
    vif = env.vif("bridge.json", network={"bridge": bridge})
    before = env.snapshot()
    with pytest.raises(MissingDeviceError) as raised:
        DRIVER.plug(vif, host)
    assert_missing(raised, bridge)
    assert_same(before, env.snapshot())

    env.netns.ip("link", "add", "name", veth, "type", "veth", "peer", "name", veth + "p")
    not_a_bridge = env.vif("bridge.json", network={"bridge": veth})
    with pytest.raises(MissingDeviceError, match=f"{veth} is a veth device, not a bridge"):
        DRIVER.plug(not_a_bridge, host)

    env.netns.add_bridge(bridge)
    before = env.snapshot()
    outcome = DRIVER.plug(vif, host)
    assert outcome.already_done
    assert outcome.unchanged == [RequireLink(bridge, kind="bridge", role="Linux bridge")]
    assert_same(before, env.snapshot())


# --- ethernet ------------------------------------------------------------------------------------


def test_ethernet_tap(env: Env) -> None:
    vif = env.vif("ethernet.json")
    tap_step = EnsureTap(vif.tap_name, mtu=9000, multi_queue=False)
    assert DRIVER.plan(vif).steps == (tap_step,)
    host = env.host("native")
    before = env.snapshot()

    assert DRIVER.plug(vif, host).changed == [tap_step]

    assert_link(env.netns, vif.tap_name, kind="tun", master=None, mtu=9000, up=True,
                tun={"pi": False, "vnet_hdr": True, "multi_queue": False})
    flags = tun_flags(env.netns, vif.tap_name)
    assert flags & IFF_NO_PI
    assert flags & IFF_VNET_HDR
    assert not flags & IFF_MULTI_QUEUE
    assert DRIVER.unplug(vif, host).changed == [DeleteLink(vif.tap_name)]
    assert_same(before, env.snapshot())


def test_ethernet_refuses_a_tap_with_other_flags(env: Env) -> None:
    """A TAP QEMU could not open (multi_queue differs) is reported, not silently used."""
    vif = env.vif("ethernet.json", queues=4)
    env.netns.add_tap(vif.tap_name, multi_queue=False, mtu=9000)
    before = env.snapshot()
    with pytest.raises(StepFailed, match="multi_queue=on") as raised:
        DRIVER.plug(vif, env.host("native"))
    assert raised.value.device == vif.tap_name
    assert_same(before, env.snapshot())


# --- macvtap kinds: the lower device must exist ----------------------------------------------


@pytest.mark.parametrize("example", ["direct.json", "802.1qbg.json", "802.1qbh.json"])
def test_macvtap_lower_device(example: str, env: Env) -> None:
    lower = f"nic{uuid.uuid4().hex[:8]}"
    env.leftovers.links.append(lower)
    vif = env.vif(example, network={"interface": lower})
    assert DRIVER.plan(vif).steps == (RequireLink(lower, role="macvtap lower device"),)
    assert DRIVER.unplan(vif).steps == ()
    host = env.host("native")
    before = env.snapshot()
    with pytest.raises(MissingDeviceError) as raised:
        DRIVER.plug(vif, host)
    assert_missing(raised, lower)
    assert_same(before, env.snapshot())

    env.netns.add_veth(lower, lower + "p")
    before = env.snapshot()
    outcome = DRIVER.plug(vif, host)
    assert outcome.already_done
    assert outcome.unchanged == [RequireLink(lower, role="macvtap lower device")]
    assert DRIVER.unplug(vif, host).already_done
    assert_same(before, env.snapshot())


# --- hostdev, vhostuser ------------------------------------------------------------------------


def test_hostdev_missing_pci_device(env: Env) -> None:
    address = "0000:3b:00.2"
    assert not Path("/sys/bus/pci/devices", address).exists()
    vif = env.vif("hostdev.json")
    assert DRIVER.plan(vif).steps == (RequirePci(address),)
    before = env.snapshot()
    with pytest.raises(MissingDeviceError) as raised:
        DRIVER.plug(vif, env.host("native"))
    assert_missing(raised, address)
    assert_same(before, env.snapshot())


def test_vhostuser_plan() -> None:
    """No DPDK here: the plan and its ovs-vsctl commands only (never applied)."""
    vif = vifs_from_data(example_data("vhostuser.json"), source="vhostuser.json")[0]
    port = "vhu" + vif.id[:11]
    socket = "/var/run/openvswitch/vhu3c4d5e6f-7a"
    instance_uuid = str(uuid.uuid4())
    plan = DRIVER.plan(vif, instance_uuid=instance_uuid)
    ids = {"iface-id": vif.id, "iface-status": "active", "attached-mac": vif.mac,
           "vm-uuid": instance_uuid}
    assert normalized(plan.steps) == [
        RequireOvsBridge("br-int"),
        EnsureOvsPort("br-int", port, external_ids=tuple(sorted(ids.items())),
                      mtu_request=None, interface_type="dpdkvhostuserclient",
                      options=(("vhost-server-path", socket),)),
    ]
    assert DRIVER.unplan(vif).steps == (DeleteOvsPort(port),)
    commands = VsctlOvsdb.commands(plan.steps[1:])
    assert commands[:5] == ["--", "--may-exist", "add-port", "br-int", port]
    assert 'type="dpdkvhostuserclient"' in commands
    assert f'options:vhost-server-path="{socket}"' in commands


def test_vhostuser_client_mode_makes_ovs_the_server() -> None:
    data = example_data("vhostuser.json", vhostuser={"mode": "client"})
    vif = vifs_from_data(data, source="vhostuser.json")[0]
    port_step = DRIVER.plan(vif).steps[-1]
    assert isinstance(port_step, EnsureOvsPort)
    assert port_step.interface_type == "dpdkvhostuser"
    assert dict(port_step.options).get("vhost-server-path") is None


# --- one process, several hosts ----------------------------------------------------------------


def test_two_hosts_on_two_ovsdbs(env: Env, tmp_path: Path) -> None:
    """Two native Hosts in one process, each on its own OVSDB, write each into its own
    (ovsdbapp keeps one connection per class and process: a second Host used to reuse the
    first one's, whatever its URL)."""
    first_vif, second_vif = env.vif("ovs-manual.json"), env.vif("ovs-manual.json")
    with Netns() as other_netns, PrivateOvs(other_netns) as other_ovs:
        other_ovs.add_bridge("br-int")
        DRIVER.plug(first_vif, env.host("native"))
        second = Host(netns=other_netns.name, ovsdb=other_ovs.db, lock_dir=tmp_path / "locks")
        try:
            DRIVER.plug(second_vif, second)
        finally:
            second.close()
        assert first_vif.tap_name in env.ovs.ports(env.br_int)
        assert second_vif.tap_name not in env.ovs.ports(env.br_int)
        assert second_vif.tap_name in other_ovs.ports("br-int")


# --- backend parity ---------------------------------------------------------------------------


def port_rows(env: Env, port: str) -> dict[str, Any]:
    rows = ovsdb_rows(env.ovs)
    return {"Port": rows["Port"][port], "Interface": rows["Interface"][port],
            "bridges": sorted(name for name, row in rows["Bridge"].items()
                              if port in as_set(row["ports"]))}


@pytest.mark.parametrize("case", list(OVS_CASES))
def test_backends_write_identical_rows(case: str, env: Env) -> None:
    spec = OVS_CASES[case]
    vif = env.vif(spec.example, **spec.changes)
    port = vif.qvo_name if vif.plug == "hybrid" else vif.tap_name
    instance_uuid = str(uuid.uuid4())
    before = env.snapshot()
    found = {}
    for backend in ("native", "vsctl"):
        host = env.host(backend)
        DRIVER.plug(vif, host, instance_uuid=instance_uuid)
        found[backend] = port_rows(env, port)
        DRIVER.unplug(vif, host)
        assert_same(before, env.snapshot())
    assert found["native"] == found["vsctl"]
    assert found["native"]["bridges"] == [env.br_int]


def test_backends_converge_a_changed_port_identically(env: Env) -> None:
    """A second plug with other settings replaces tag, trunks, mtu_request and updates the
    external_ids, the same way under both backends."""
    first = env.vif("ovs-manual.json")
    data = example_data("ovs-manual.json", mtu=None, network={"vlan": None, "trunk": [7, 8]})
    data.update(id=first.id, mac=first.mac, ovs={"interface_id": first.id})
    second = vifs_from_data(data, source="changed")[0]
    old_uuid, new_uuid = str(uuid.uuid4()), str(uuid.uuid4())
    found = {}
    for backend in ("native", "vsctl"):
        host = env.host(backend)
        DRIVER.plug(first, host, instance_uuid=old_uuid)
        assert not DRIVER.plug(second, host, instance_uuid=new_uuid).already_done
        assert DRIVER.plug(second, host, instance_uuid=new_uuid).already_done
        found[backend] = port_rows(env, first.tap_name)
        DRIVER.unplug(second, host)
    assert found["native"] == found["vsctl"]
    row = found["native"]
    assert as_set(row["Port"]["tag"]) == []
    assert as_set(row["Port"]["trunks"]) == [7, 8]
    assert as_set(row["Interface"]["mtu_request"]) == []
    assert row["Interface"]["external_ids"]["vm-uuid"] == new_uuid


def test_backends_create_identical_bridges(env: Env) -> None:
    bridge = f"brp{uuid.uuid4().hex[:8]}"
    env.leftovers.bridges.append(bridge)
    vif = env.vif("ovs-hybrid.json", network={"bridge": bridge})
    found = {}
    for backend in ("native", "vsctl"):
        host = env.host(backend)
        DRIVER.plug(vif, host, create_ovs_bridges=True, instance_uuid=vif.id)
        found[backend] = (ovsdb_rows(env.ovs)["Bridge"][bridge], port_rows(env, vif.qvo_name))
        DRIVER.unplug(vif, host)
        env.ovs.vsctl("del-br", bridge)
    assert found["native"] == found["vsctl"]
    assert found["native"][0]["datapath_type"] == "netdev"


# --- idempotency ------------------------------------------------------------------------------


@pytest.mark.parametrize("example", ["ovs-hybrid.json", "ovs-manual.json"])
def test_plug_twice_unplug_twice(example: str, ovsdb_backend: str, env: Env) -> None:
    vif = env.vif(example)
    instance_uuid = str(uuid.uuid4())
    host = env.host(ovsdb_backend)
    before = env.snapshot()
    assert not DRIVER.plug(vif, host, instance_uuid=instance_uuid).already_done
    plugged = env.snapshot()

    again = DRIVER.plug(vif, host, instance_uuid=instance_uuid)

    assert again.already_done
    assert again.changed == []
    steps = DRIVER.plan(vif, instance_uuid=instance_uuid).steps
    assert normalized(again.unchanged) == normalized(
        [step for step in steps if step.phase == "check"] + changing(steps))
    assert_same(plugged, env.snapshot())
    # Another Host (another process, say) sees the same.
    assert DRIVER.plug(vif, env.host(ovsdb_backend), instance_uuid=instance_uuid).already_done

    assert not DRIVER.unplug(vif, host).already_done
    second = DRIVER.unplug(vif, host)
    assert second.already_done
    assert second.changed == []
    assert_same(before, env.snapshot())


HALF_PLUGGED = ["only-qbr", "only-veth", "only-ovs-port", "qbr-and-veth", "veth-and-port"]


@pytest.mark.parametrize("state", HALF_PLUGGED)
def test_unplug_of_a_half_plugged_hybrid_vif(state: str, ovsdb_backend: str, env: Env) -> None:
    vif = env.vif("ovs-hybrid.json")
    before = env.snapshot()
    if "qbr" in state:
        env.netns.add_bridge(vif.qbr_name, mtu=1450)
    if "veth" in state:
        env.netns.add_veth(vif.qvb_name, vif.qvo_name)
        if "qbr" in state:
            env.netns.ip("link", "set", "dev", vif.qvb_name, "master", vif.qbr_name)
    if "port" in state:
        env.ovs.vsctl("add-port", env.br_int, vif.qvo_name, "--", "set", "Interface",
                      vif.qvo_name, f"external_ids:iface-id={vif.id}")
    assert env.snapshot() != before

    outcome = DRIVER.unplug(vif, env.host(ovsdb_backend))

    assert not outcome.already_done
    assert_same(before, env.snapshot())


@pytest.mark.parametrize("state", ["only-qbr", "qbr-and-veth"])
def test_plug_of_a_half_plugged_hybrid_vif_converges(state: str, ovsdb_backend: str,
                                                     env: Env) -> None:
    """After a crash halfway through a plug, plugging again finishes the job."""
    vif = env.vif("ovs-hybrid.json")
    instance_uuid = str(uuid.uuid4())
    host = env.host(ovsdb_backend)
    before = env.snapshot()
    env.netns.add_bridge(vif.qbr_name, mtu=1450)
    if state == "qbr-and-veth":
        env.netns.add_veth(vif.qvb_name, vif.qvo_name)

    outcome = DRIVER.plug(vif, host, instance_uuid=instance_uuid)

    assert not outcome.already_done
    assert_link(env.netns, vif.qbr_name, kind="bridge", mtu=1450, up=True, forward_delay=0,
                ageing_time=0)
    assert ipv6_disabled(env.netns, vif.qbr_name)
    assert_link(env.netns, vif.qvb_name, kind="veth", master=vif.qbr_name, mtu=1450, up=True)
    assert_ovs_port(env, vif.qvo_name, vif, instance_uuid, mtu=1450, tag=100, trunks=[])
    DRIVER.unplug(vif, host)
    assert_same(before, env.snapshot())


def test_plug_many_then_unplug_many(ovsdb_backend: str, env: Env) -> None:
    vifs = [env.vif("ovs-hybrid.json", network={"vlan": 100 + n}) for n in range(10)]
    instance_uuid = str(uuid.uuid4())
    host = env.host(ovsdb_backend)
    before = env.snapshot()

    outcome = DRIVER.plug_many(vifs, host, instance_uuid=instance_uuid)

    assert len(outcome.changed) == 10 * 4
    for n, vif in enumerate(vifs):
        assert_link(env.netns, vif.qvb_name, kind="veth", master=vif.qbr_name, mtu=1450,
                    up=True)
        assert_ovs_port(env, vif.qvo_name, vif, instance_uuid, mtu=1450, tag=100 + n,
                        trunks=[])
    assert DRIVER.plug_many(vifs, host, instance_uuid=instance_uuid).already_done

    unplugged = DRIVER.unplug_many(vifs, host)

    assert len(unplugged.changed) == 10 * 3
    assert_same(before, env.snapshot())


# --- the CLI --------------------------------------------------------------------------------------


def vifplug(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vifplug", *args], capture_output=True,
                          text=True, check=False, timeout=60)


def test_cli_plug_unplug(env: Env) -> None:
    example = EXAMPLES / "ovs-hybrid.json"
    vif = env.leftovers.vif(vifs_from_data(json.loads(example.read_text()), source="x")[0])
    instance_uuid = str(uuid.uuid4())
    where = ["--netns", env.netns.name, "--ovsdb", env.ovs.db]
    before = env.snapshot()

    dry = vifplug("plug", *where, str(example), "--instance-uuid", instance_uuid, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.strip() == str(DRIVER.plan(vif, instance_uuid=instance_uuid))
    assert_same(before, env.snapshot())

    plugged = vifplug("plug", *where, str(example), "--instance-uuid", instance_uuid)
    assert plugged.returncode == 0, plugged.stderr
    assert_link(env.netns, vif.qbr_name, kind="bridge", mtu=1450, up=True)
    assert_link(env.netns, vif.qvb_name, kind="veth", master=vif.qbr_name, mtu=1450, up=True)
    assert_ovs_port(env, vif.qvo_name, vif, instance_uuid, mtu=1450, tag=100, trunks=[])

    unplugged = vifplug("unplug", *where, "--ovsdb-backend", "vsctl", str(example))
    assert unplugged.returncode == 0, unplugged.stderr
    assert_same(before, env.snapshot())


def test_cli_missing_ovs_bridge(env: Env, tmp_path: Path) -> None:
    data = example_data("ovs-hybrid.json", network={"bridge": "br-nowhere"})
    env.leftovers.vif(vifs_from_data(data, source="x")[0])
    path = tmp_path / "vif.json"
    path.write_text(json.dumps(data))
    before = env.snapshot()

    result = vifplug("plug", "--netns", env.netns.name, "--ovsdb", env.ovs.db, str(path))

    assert result.returncode == 2
    assert "br-nowhere" in result.stderr
    assert result.stdout == ""
    assert_same(before, env.snapshot())
