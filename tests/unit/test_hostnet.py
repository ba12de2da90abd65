"""``host apply``'s planning (map, host state and record in, steps out), without root: every shape,
every drift, every refusal with its message, the steps' own behaviour and rollback on the
in-memory fakes, the OVSDB steps' ovs-vsctl commands, and the record file."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vifplug.errors import VifError
from vifplug.host import Host, StepFailed
from vifplug.host.apply import apply_plug
from vifplug.host.fake import FakeNetlink, FakeOvsdb
from vifplug.host.faults import injected
from vifplug.host.network import DeviceRecord, apply_host, read_host_state, record_path
from vifplug.hostnet import (
    DeleteOwnedLink,
    DeleteOwnedOvsBridge,
    EnsureBond,
    EnsureNicUp,
    EnsureOvsUplink,
    EnsureOwnedOvsBridge,
    HostMapError,
    HostPlan,
    HostState,
    LinkState,
    OvsBridgeState,
    OvsPortState,
    Owned,
    OwnedDevice,
    ReleasePort,
    plan_host,
)
from vifplug.netmap import NetworkMap, load_network_map
from vifplug.plan import (
    DeleteOvsPort,
    EnsureLinuxBridge,
    EnsureMaster,
    EnsureVlanLink,
    Plan,
    Step,
)

NOTHING = Owned()
Runner = Callable[..., Any]

LEGACY = """\
[networks.red]
switch = "legacy"
nic = "eth1"
vlan = 100
mtu = 9000

[networks.plain]
switch = "legacy"
nic = "eth1"

[networks.store]
switch = "legacy"
bond = {name = "bond0", nics = ["eth2", "eth3"]}
"""

OVS = """\
[networks.red]
switch = "ovs"
nic = "eth1"
mtu = 9000

[networks.blue]
switch = "ovs"
nic = "eth1"
vlan = 100

[networks.store]
switch = "ovs"
bond = {name = "bond0", nics = ["eth2", "eth3"], mode = "802.3ad"}
vlan = 300

[networks.inside]
switch = "ovs"
bridge = "br-in"
"""


def load(tmp_path: Path, text: str) -> NetworkMap:
    path = tmp_path / "networks.toml"
    path.write_text(text)
    return load_network_map(path)


def nics(*names: str, up: bool = True, mtu: int = 1500, **masters: str) -> dict[str, LinkState]:
    return {name: LinkState(name, "veth", mtu, up, masters.get(name)) for name in names}


def with_ovs(links: dict[str, LinkState], bridges: dict[str, OvsBridgeState] | None = None,
             ports: dict[str, OvsPortState] | None = None,
             mtus: dict[str, int | None] | None = None) -> HostState:
    return HostState(links, bridges or {}, ports or {}, mtus or {})


def described(plan: HostPlan) -> list[str]:
    return [step.describe() for step in plan.steps]


# --- legacy ------------------------------------------------------------------------------------


def test_legacy_from_empty(tmp_path: Path) -> None:
    plan = plan_host(load(tmp_path, LEGACY), HostState(nics("eth1", "eth2", "eth3")))
    assert plan.steps == (
        EnsureNicUp("eth1", 9000),
        EnsureLinuxBridge("plain"),
        EnsureVlanLink("eth1.100", "eth1", 100, 9000),
        EnsureLinuxBridge("red", 9000),
        EnsureBond("bond0", "active-backup", ("eth2", "eth3")),
        EnsureLinuxBridge("store"),
        EnsureMaster("eth1", "plain"),
        EnsureMaster("eth1.100", "red"),
        EnsureMaster("bond0", "store"),
    )
    assert plan.for_network("red") == (EnsureNicUp("eth1", 9000),
                                       EnsureVlanLink("eth1.100", "eth1", 100, 9000),
                                       EnsureLinuxBridge("red", 9000),
                                       EnsureMaster("eth1.100", "red"))
    assert sorted(plan.owned_after.devices) == ["bond0", "eth1.100", "plain", "red", "store"]
    assert plan.owned_after.ports == {"bond0": "store", "eth1": "plain", "eth1.100": "red"}
    assert plan.owned_after.devices["bond0"] == OwnedDevice(
        "bond0", "bond", "store", mode="active-backup", nics=("eth2", "eth3"))
    assert str(plan).startswith(f"host networks ({tmp_path}/networks.toml):\n  1. ensure NIC "
                                "eth1 is up (mtu 9000)\n  2. ensure Linux bridge plain\n")


def applied(host_map: NetworkMap, netlink: FakeNetlink, owned: Owned = NOTHING) -> HostPlan:
    """Plan on the fake's state and apply it; the second plan is empty."""
    host = Host.using(netlink, FakeOvsdb())
    plan = plan_host(host_map, read_host_state(host, ovs=False), owned)
    apply_plug([Plan("host", "host networks", plan.steps)], host)
    again = plan_host(host_map, read_host_state(host, ovs=False), plan.owned_after)
    assert again.steps == (), described(again)
    return plan


def fake_nics(*names: str) -> FakeNetlink:
    netlink = FakeNetlink()
    for name in names:
        netlink.add_device(name, None, up=False)
    return netlink


def test_legacy_applies_on_the_fake_and_converges(tmp_path: Path) -> None:
    netlink = fake_nics("eth1", "eth2", "eth3")
    plan = applied(load(tmp_path, LEGACY), netlink)
    state = netlink.state()
    assert state["eth1"]["mtu"] == 9000
    assert state["eth1"]["up"]
    assert state["eth1.100"]["master"] == "red"
    assert state["eth1.100"]["mtu"] == 9000
    assert state["eth1"]["master"] == "plain"
    assert state["eth2"]["master"] == state["eth3"]["master"] == "bond0"
    assert state["bond0"]["master"] == "store"
    assert state["bond0"]["bond_mode"] == "active-backup"
    assert state["red"]["mtu"] == 9000
    assert state["red"]["up"]
    # every network gone: vifplug's devices go, the NICs stay
    host_map = load(tmp_path, "")
    applied(host_map, netlink, plan.owned_after)
    assert sorted(netlink.state()) == ["eth1", "eth2", "eth3", "lo"]


@pytest.mark.parametrize("drift", ["bridge-missing", "wrong-mtu", "extra-uplink", "down",
                                   "vlan-moved", "bond-mode"])
def test_legacy_drift_is_planned_and_converges(tmp_path: Path, drift: str) -> None:
    netlink = fake_nics("eth1", "eth2", "eth3", "eth4")
    plan = applied(load(tmp_path, LEGACY), netlink)
    text = LEGACY
    if drift == "bridge-missing":
        netlink.delete("red")
    elif drift == "wrong-mtu":
        netlink.update("red", mtu=1500)
    elif drift == "extra-uplink":
        text = LEGACY.replace('nic = "eth1"\n\n', 'nic = "eth4"\n\n')
    elif drift == "down":
        netlink.update("eth1", up=False)
    elif drift == "vlan-moved":
        text = LEGACY.replace("vlan = 100", "vlan = 101")
    else:
        text = LEGACY.replace('nics = ["eth2", "eth3"]}', 'nics = ["eth2", "eth3"], '
                              'mode = "802.3ad"}')
    host_map = load(tmp_path, text)
    host = Host.using(netlink, FakeOvsdb())
    drifted = plan_host(host_map, read_host_state(host, ovs=False), plan.owned_after)
    assert drifted.steps
    expected: dict[str, Step] = {
        "bridge-missing": EnsureLinuxBridge("red", 9000),
        "wrong-mtu": EnsureLinuxBridge("red", 9000),
        "extra-uplink": ReleasePort("eth1", "plain"),
        "down": EnsureNicUp("eth1", 9000),
        "vlan-moved": DeleteOwnedLink(OwnedDevice("eth1.100", "vlan", "red", "eth1", 100)),
        "bond-mode": DeleteOwnedLink(OwnedDevice("bond0", "bond", "store", mode="active-backup",
                                                 nics=("eth2", "eth3"))),
    }
    assert expected[drift] in drifted.steps, described(drifted)
    applied(host_map, netlink, plan.owned_after)
    state = netlink.state()
    if drift == "extra-uplink":
        assert state["eth1"]["master"] is None
        assert state["eth4"]["master"] == "plain"
    if drift == "vlan-moved":
        assert "eth1.100" not in state
        assert state["eth1.101"]["master"] == "red"
    if drift == "bond-mode":
        assert state["bond0"]["bond_mode"] == "802.3ad"


def test_legacy_failure_at_every_step_rolls_back(tmp_path: Path) -> None:
    """From empty, and removing everything: a failure before any step, or inside one (the
    netlink call that makes its change), leaves the fake exactly as it was."""
    for removing in (False, True):
        netlink = fake_nics("eth1", "eth2", "eth3")
        owned = Owned()
        if removing:
            owned = applied(load(tmp_path, LEGACY), netlink).owned_after
        host_map = load(tmp_path, "" if removing else LEGACY)
        host = Host.using(netlink, FakeOvsdb())
        plan = plan_host(host_map, read_host_state(host, ovs=False), owned)
        before = netlink.state()
        for target in plan.steps:
            def fault(step: Step, target: Step = target) -> None:
                if step == target:
                    raise RuntimeError(f"injected before {step.device}")

            with injected(host, fault), pytest.raises(StepFailed) as failed:
                apply_plug([Plan("host", "host networks", plan.steps)], host)
            assert failed.value.rolled_back
            assert failed.value.device == target.device
            assert netlink.state() == before, target
        last = plan.steps[-1]
        operation = {"EnsureMaster": "set_master", "DeleteOwnedLink": "delete"}[
            type(last).__name__]
        netlink.fail(operation, last.device)
        with pytest.raises(StepFailed):
            apply_plug([Plan("host", "host networks", plan.steps)], host)
        assert netlink.state() == before


def test_delete_owned_bridge_is_made_again_with_its_ports_mtu_and_mac() -> None:
    netlink = fake_nics("eth1")
    netlink.add_device("red", "bridge", mtu=9000, up=True, address="02:00:00:00:00:01")
    netlink.devices["eth1"].master = netlink.devices["red"].index
    netlink.devices["eth1"].up = True
    before = netlink.state()
    host = Host.using(netlink, FakeOvsdb())
    step = DeleteOwnedLink(OwnedDevice("red", "bridge", "red"))
    netlink.fail("set_master", "nothing")  # never fires: the fault below fails the apply

    def fault(found: Step) -> None:
        if found == EnsureNicUp("eth1"):
            raise RuntimeError("injected")

    with injected(host, fault), pytest.raises(StepFailed):
        apply_plug([Plan("host", "host", (step, EnsureNicUp("eth1")))], host)
    assert netlink.state() == before


def test_legacy_bond_nics_go_down_to_be_enslaved_and_come_back() -> None:
    netlink = fake_nics("eth2", "eth3")
    netlink.update("eth2", up=True)
    host = Host.using(netlink, FakeOvsdb())
    before = netlink.state()
    netlink.fail("set_master", "eth3")
    with pytest.raises(StepFailed) as failed:
        apply_plug([Plan("host", "host", (EnsureBond("bond0", "802.3ad", ("eth2", "eth3")),))],
                   host)
    assert "ensure bond bond0 (802.3ad: eth2, eth3): failed" in str(failed.value)
    assert netlink.state() == before
    apply_plug([Plan("host", "host", (EnsureBond("bond0", "802.3ad", ("eth2", "eth3")),))],
               host)
    state = netlink.state()
    assert state["bond0"]["up"]
    assert state["eth2"]["up"]
    assert state["eth3"]["up"]


# --- OVS ---------------------------------------------------------------------------------------


def test_ovs_from_empty(tmp_path: Path) -> None:
    plan = plan_host(load(tmp_path, OVS), with_ovs(nics("eth1", "eth2", "eth3")),
                     datapath_type="netdev")
    assert plan.steps == (
        EnsureOwnedOvsBridge("br-bond0", "netdev"),
        EnsureOvsUplink("br-bond0", "bond0", ("eth2", "eth3"), None, (300,), "trunk",
                        "balance-tcp", "active"),
        EnsureOwnedOvsBridge("br-eth1", "netdev", 9000),
        EnsureOvsUplink("br-eth1", "eth1", ("eth1",), 4094, (100,), "native-untagged",
                        mtu=9000),
        EnsureOwnedOvsBridge("br-in", "netdev"),
    )
    assert plan.owned_after == Owned()


def test_ovs_uplink_of_one_untagged_network_is_an_access_port(tmp_path: Path) -> None:
    plan = plan_host(load(tmp_path, '[networks.red]\nswitch = "ovs"\nnic = "eth1"\n'),
                     with_ovs(nics("eth1")))
    assert EnsureOvsUplink("br-eth1", "eth1", ("eth1",), 4094, (), "access") in plan.steps


def owned_ovs_state(**changes: object) -> HostState:
    """The host after applying OVS (datapath netdev), with ``changes`` to the uplink ports."""
    bridges = {
        "br-eth1": OvsBridgeState("br-eth1", True, "netdev", ("br-eth1", "eth1"), 9000),
        "br-bond0": OvsBridgeState("br-bond0", True, "netdev", ("bond0", "br-bond0")),
        "br-in": OvsBridgeState("br-in", True, "netdev", ("br-in",)),
    }
    eth1 = OvsPortState("eth1", "br-eth1", True, ("eth1",), 4094, (100,), "native-untagged")
    bond = OvsPortState("bond0", "br-bond0", True, ("eth2", "eth3"), None, (300,), "trunk",
                        "balance-tcp", "active")
    ports = {"eth1": eth1, "bond0": bond}
    for name, value in changes.items():
        if name == "bridges":
            bridges.update(value)  # type: ignore[call-overload]
        elif name == "ports":
            ports.update(value)  # type: ignore[call-overload]
    return with_ovs(nics("eth1", "eth2", "eth3", "eth4"), bridges, ports,
                    {"eth1": 9000, "br-eth1": 9000})


def test_ovs_applied_host_needs_nothing(tmp_path: Path) -> None:
    plan = plan_host(load(tmp_path, OVS), owned_ovs_state(), datapath_type="netdev")
    assert plan.steps == ()
    assert str(plan).endswith("nothing to do on this host")


@pytest.mark.parametrize(("drift", "expected"), [
    ({"ports": {"eth1": OvsPortState("eth1", "br-eth1", True, ("eth1",), 7, (100,),
                                     "native-untagged")}},
     EnsureOvsUplink("br-eth1", "eth1", ("eth1",), 4094, (100,), "native-untagged", mtu=9000)),
    ({"ports": {"bond0": OvsPortState("bond0", "br-bond0", True, ("eth2",), None, (300,),
                                      "trunk", "balance-tcp", "active")}},
     EnsureOvsUplink("br-bond0", "bond0", ("eth2", "eth3"), None, (300,), "trunk",
                     "balance-tcp", "active", replace=True)),
    ({"bridges": {"br-eth1": OvsBridgeState("br-eth1", True, "netdev", ("br-eth1", "eth1",
                                                                        "eth4"), 9000)},
      "ports": {"eth4": OvsPortState("eth4", "br-eth1", True, ("eth4",))}},
     DeleteOvsPort("eth4")),
    ({"bridges": {"br-old": OvsBridgeState("br-old", True, "netdev", ("br-old",))}},
     DeleteOwnedOvsBridge("br-old")),
    ({"bridges": {"br-eth1": OvsBridgeState("br-eth1", True, "netdev", ("br-eth1", "eth1"),
                                            1500)}},
     EnsureOwnedOvsBridge("br-eth1", "netdev", 9000)),
    ({"bridges": {"br-in": OvsBridgeState("br-in", True, "system", ("br-in",))}},
     EnsureOwnedOvsBridge("br-in", "netdev")),
], ids=["wrong-tag", "bond-nic-missing", "extra-uplink", "bridge-gone", "wrong-mtu",
        "datapath"])
def test_ovs_drift(tmp_path: Path, drift: dict[str, object], expected: Step) -> None:
    plan = plan_host(load(tmp_path, OVS), owned_ovs_state(**drift), datapath_type="netdev")
    assert plan.steps == (expected,), described(plan)


def test_ovs_bridge_missing_is_made_again(tmp_path: Path) -> None:
    state = owned_ovs_state()
    bridges = dict(state.bridges or {})
    del bridges["br-eth1"]
    ports = {name: port for name, port in state.ports.items() if name != "eth1"}
    plan = plan_host(load(tmp_path, OVS), with_ovs(dict(state.links), bridges, ports),
                     datapath_type="netdev")
    assert [type(step).__name__ for step in plan.steps] == ["EnsureOwnedOvsBridge",
                                                            "EnsureOvsUplink"]


def test_ovs_uplink_moved_to_another_bridge_is_made_again(tmp_path: Path) -> None:
    text = OVS.replace('nic = "eth1"\nmtu', 'nic = "eth1"\nbridge = "br-phys"\nmtu')
    plan = plan_host(load(tmp_path, text), owned_ovs_state(), datapath_type="netdev")
    assert EnsureOvsUplink("br-phys", "eth1", ("eth1",), 4094, (100,), "native-untagged",
                           mtu=9000, replace=True) in plan.steps
    assert DeleteOwnedOvsBridge("br-eth1") in plan.steps


def test_foreign_uplink_less_ovs_bridge_is_used_as_it_is(tmp_path: Path) -> None:
    state = with_ovs(nics("eth1"), {"br-in": OvsBridgeState("br-in", False, "system",
                                                            ("br-in", "vm1"))})
    plan = plan_host(load(tmp_path, '[networks.inside]\nswitch = "ovs"\nbridge = "br-in"\n'),
                     state, datapath_type="netdev")
    assert plan.steps == ()


def test_transition_legacy_to_ovs_is_one_plan(tmp_path: Path) -> None:
    """The legacy map's devices go (net devices first), the OVS bridges come (one OVSDB
    transaction after): one apply, rolled back as a whole."""
    owned = Owned({"red": OwnedDevice("red", "bridge", "red")}, {"eth1": "red"})
    links = {**nics("eth1", eth1="red"), "red": LinkState("red", "bridge", 1500, True)}
    plan = plan_host(load(tmp_path, '[networks.red]\nswitch = "ovs"\nnic = "eth1"\n'),
                     with_ovs(links), owned)
    assert plan.steps == (DeleteOwnedLink(OwnedDevice("red", "bridge", "red")),
                          EnsureOwnedOvsBridge("br-eth1"),
                          EnsureOvsUplink("br-eth1", "eth1", ("eth1",), 4094, (), "access"))
    assert plan.owned_after == Owned()


# --- refusals ----------------------------------------------------------------------------------


def refused(tmp_path: Path, text: str, state: HostState, owned: Owned = NOTHING) -> str:
    with pytest.raises(HostMapError) as error:
        plan_host(load(tmp_path, text), state, owned)
    assert error.value.exit_code == 2
    return str(error.value)


def test_mixed_map_is_refused(tmp_path: Path) -> None:
    text = LEGACY + '[networks.o]\nswitch = "ovs"\nbridge = "br-o"\n'
    message = refused(tmp_path, text, with_ovs(nics("eth1", "eth2", "eth3")))
    assert message == (f"{tmp_path}/networks.toml: the map mixes switch types: legacy: plain, "
                       "red, store; ovs/ovn: o (one switch type per host, so that a transition "
                       "moves the whole host at once; allow_mixed = true at the top of the map "
                       "allows it, unsupported)")
    plan = plan_host(load(tmp_path, "allow_mixed = true\n" + text),
                     with_ovs(nics("eth1", "eth2", "eth3")))
    assert EnsureOwnedOvsBridge("br-o") in plan.steps


def test_legacy_refusals(tmp_path: Path) -> None:
    links = {**nics("eth2", "eth3"), "red": LinkState("red", "veth", 1500, True),
             "eth1.100": LinkState("eth1.100", "vlan", 1500, True, parent="eth1")}
    message = refused(tmp_path, LEGACY, HostState(links))
    path = f"{tmp_path}/networks.toml"
    assert message.splitlines() == [
        f"{path}:9: networks.plain.nic: NIC eth1 does not exist on this host",
        f"{path}:1: networks.red.bridge: red exists on this host and is not vifplug's: vifplug "
        "makes this Linux bridge itself; remove the device or rename it here",
        f"{path}:4: networks.red.vlan: eth1.100 exists on this host and is not vifplug's: "
        "vifplug makes this VLAN device itself; remove the device or rename it here",
    ]


def test_legacy_nic_held_by_a_foreign_bridge_is_refused(tmp_path: Path) -> None:
    links = {**nics("eth1", eth1="br0"), "br0": LinkState("br0", "bridge", 1500, True)}
    message = refused(tmp_path, '[networks.red]\nswitch = "legacy"\nnic = "eth1"\n',
                      HostState(links))
    assert message == (f"{tmp_path}/networks.toml:3: networks.red.nic: eth1 is a port of br0, "
                       "which is not vifplug's: release it first")


def test_removal_with_foreign_ports_is_refused(tmp_path: Path) -> None:
    owned = Owned({"red": OwnedDevice("red", "bridge", "red")}, {"eth1": "red"})
    links = {**nics("eth1", "vnet0", eth1="red", vnet0="red"),
             "red": LinkState("red", "bridge", 1500, True)}
    bridges = {"br-x": OvsBridgeState("br-x", True, "", ("br-x", "tap1"))}
    message = refused(tmp_path, "", with_ovs(links, bridges), owned)
    assert message.splitlines() == [
        f"{tmp_path}/networks.toml: network red is gone from the map, but its Linux bridge red "
        "still holds vnet0 (not vifplug's): unplug them first",
        f"{tmp_path}/networks.toml: vifplug's OVS bridge br-x is no network's any more, but it "
        "still holds tap1 (not vifplug's): unplug them first",
    ]


def test_ovs_refusals(tmp_path: Path) -> None:
    state = with_ovs(
        {**nics("eth2", "eth3", "eth4", eth3="br0"),
         "br-in": LinkState("br-in", "bridge", 1500, True)},
        {"br-eth1": OvsBridgeState("br-eth1", False, "", ("br-eth1",))},
        {"eth2": OvsPortState("eth2", "br-other", False, ("eth2",))})
    path = f"{tmp_path}/networks.toml"
    assert refused(tmp_path, OVS, state).splitlines() == [
        f"{path}:13: networks.store.bond: eth2 is OVS port eth2 on bridge br-other, which is "
        "not vifplug's: remove it first",
        f"{path}:13: networks.store.bond: eth3 is a port of br0, which is not vifplug's: "
        "release it first",
        f"{path}:6: networks.blue.bridge: OVS bridge br-eth1 exists and is not vifplug's (no "
        "external_ids:vifplug-owner): vifplug makes an uplink's bridge itself; remove it or "
        "name another bridge here",
        f"{path}:18: networks.inside.bridge: br-in exists on this host as a bridge device, not "
        "vifplug's: vifplug makes this OVS bridge itself; remove the device or name another "
        "bridge here",
    ]


def test_ovs_missing_nic_and_foreign_port_are_refused(tmp_path: Path) -> None:
    state = with_ovs(nics("eth1"), {}, {"eth1": OvsPortState("eth1", "br-x", False, ("eth1",))})
    message = refused(tmp_path, '[networks.red]\nswitch = "ovs"\nnic = "eth1"\n'
                      '[networks.blue]\nswitch = "ovs"\nnic = "eth9"\n', state)
    assert message.splitlines() == [
        f"{tmp_path}/networks.toml:3: networks.red.nic: OVS port eth1 exists on bridge br-x and "
        "is not vifplug's: remove it first",
        f"{tmp_path}/networks.toml:6: networks.blue.nic: NIC eth9 does not exist on this host",
    ]


def test_ovs_map_without_ovsdb_is_refused(tmp_path: Path) -> None:
    message = refused(tmp_path, OVS, HostState(nics("eth1", "eth2", "eth3")))
    assert message == (f"{tmp_path}/networks.toml: the map has ovs networks (store, blue, red, "
                       "inside) but this host has no OVSDB to build their bridges in")


# --- the OVSDB steps as ovs-vsctl commands ----------------------------------------------------


def test_ovsdb_steps_as_vsctl_commands() -> None:
    assert EnsureOwnedOvsBridge("br-eth1", "netdev", 9000).vsctl_commands() == [
        ["--may-exist", "add-br", "br-eth1"],
        ["set", "Bridge", "br-eth1", "external_ids:vifplug-owner=host", "datapath_type=netdev"],
        ["set", "Interface", "br-eth1", "mtu_request=9000"]]
    assert EnsureOvsUplink("br-b", "bond0", ("eth2", "eth3"), None, (300,), "trunk",
                           "balance-tcp", "active", 9000, replace=True).vsctl_commands() == [
        ["--if-exists", "del-port", "bond0"],
        ["--may-exist", "add-bond", "br-b", "bond0", "eth2", "eth3"],
        ["set", "Port", "bond0", "external_ids:vifplug-owner=host", "tag=[]", "trunks=[300]",
         "vlan_mode=trunk", 'bond_mode="balance-tcp"', 'lacp="active"'],
        ["set", "Interface", "eth2", "mtu_request=9000"],
        ["set", "Interface", "eth3", "mtu_request=9000"]]
    assert EnsureOvsUplink("br-eth1", "eth1", ("eth1",), 4094, (100, 200),
                           "native-untagged").vsctl_commands() == [
        ["--may-exist", "add-port", "br-eth1", "eth1"],
        ["set", "Port", "eth1", "external_ids:vifplug-owner=host", "tag=4094",
         "trunks=[100,200]", "vlan_mode=native-untagged", "bond_mode=[]", "lacp=[]"]]
    assert DeleteOwnedOvsBridge("br-x").vsctl_commands() == [["--if-exists", "del-br", "br-x"]]
    with pytest.raises(TypeError, match="applied with ovs-vsctl only"):
        DeleteOwnedOvsBridge("br-x").ovsdb_native(None, None)


# --- the record -------------------------------------------------------------------------------


def test_record_round_trip_per_scope(tmp_path: Path) -> None:
    path = tmp_path / "state" / "host-devices.json"
    owned = Owned({"red": OwnedDevice("red", "bridge", "red"),
                   "eth1.5": OwnedDevice("eth1.5", "vlan", "red", "eth1", 5),
                   "bond0": OwnedDevice("bond0", "bond", "s", mode="802.3ad", nics=("a", "b"))},
                  {"eth1.5": "red"})
    with DeviceRecord(path, "host").locked() as record:
        assert record.read() == Owned()
        record.write(owned)
    with DeviceRecord(path, "netns-x").locked() as other:
        assert other.read() == Owned()
        other.write(Owned({"b": OwnedDevice("b", "bridge", "b")}))
    with DeviceRecord(path, "host").locked() as record:
        assert record.read() == owned
        record.write(Owned())
    data = json.loads(path.read_text())
    assert list(data["scopes"]) == ["netns-x"]
    assert data["format"] == 1
    assert sorted(os.listdir(path.parent)) == ["host-devices.json", "host-devices.json.lock"]


def test_record_written_only_under_its_lock(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="outside locked"):
        DeviceRecord(tmp_path / "r.json", "host").write(Owned())


def test_broken_record_is_bad_input_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text("{not json")
    with pytest.raises(VifError) as error, \
            DeviceRecord(path, "host").locked() as record:
        record.read()
    assert str(error.value).startswith(f"{path}: cannot read vifplug's device record")


def test_record_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("VIFPLUG_HOST_RECORD", raising=False)
    assert record_path() == Path("/var/lib/vifplug/host-devices.json")
    monkeypatch.setenv("VIFPLUG_HOST_RECORD", str(tmp_path / "x.json"))
    assert record_path() == tmp_path / "x.json"
    assert record_path(tmp_path / "y.json") == tmp_path / "y.json"


def fake_host(netlink: FakeNetlink, tmp_path: Path) -> Host:
    host = Host.using(netlink, FakeOvsdb(backend="vsctl"))
    host.ovsdb_url = f"unix:{tmp_path}/no-ovsdb-here.sock"  # no OVSDB: legacy only
    host.ovsdb_backend = "vsctl"
    return host


def test_apply_host_records_intent_then_result(tmp_path: Path) -> None:
    netlink = fake_nics("eth1", "eth2", "eth3")
    host = fake_host(netlink, tmp_path)
    record = DeviceRecord(tmp_path / "r.json", "host")
    seen: list[Owned] = []

    def fault(step: Step) -> None:
        if not seen:  # another reader, mid-apply (reading needs no lock)
            seen.append(DeviceRecord(record.path, "host").read())

    with injected(host, fault):
        plan, outcome = apply_host(load(tmp_path, LEGACY), host, record)
    assert outcome is not None
    assert len(outcome.changed) == len(plan.steps)
    assert seen == [plan.owned_after]  # before the first step: what it is about to make
    with record.locked():
        assert record.read() == plan.owned_after
    assert apply_host(load(tmp_path, LEGACY), host, record)[1] is None  # nothing to do
    # a failure rolled back: the record is what it was
    host_map = load(tmp_path, "")
    netlink.fail("delete", "red")
    with pytest.raises(StepFailed):
        apply_host(host_map, host, record)
    with record.locked():
        assert record.read() == plan.owned_after
    apply_host(host_map, host, record)
    with record.locked():
        assert record.read() == Owned()


@pytest.mark.parametrize(("entry", "said"), [
    ({"devices": {"eth0;rm": {"kind": "bridge"}}}, "eth0;rm: must be a device name of only"),
    ({"devices": {"eth0": {"kind": "veth"}}}, "eth0.kind: expected bridge, vlan or bond (got "
                                               "'veth')"),
    ({"devices": {"e.5": {"kind": "vlan", "parent": "e", "vlan": 5000}}},
     "e.5: a vlan device needs parent and vlan 1..4094"),
    ({"devices": {"b0": {"kind": "bond", "mode": "balance-slb", "nics": []}}},
     "b0.mode: expected one of balance-rr"),
    ({"devices": {"b0": {"kind": "bond", "mode": "802.3ad", "nics": ["a" * 16]}}},
     "b0.nics: must be a device name of at most 15 bytes"),
    ({"ports": {"eth1": 5}}, "ports.eth1: expected a device name (got 5)"),
])
def test_a_record_is_checked_as_input(tmp_path: Path, entry: dict[str, object],
                                      said: str) -> None:
    """The record names devices vifplug may delete: a tampered one is refused, naming the key."""
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"format": 1, "scopes": {"host": entry}}))
    with pytest.raises(VifError) as error:
        DeviceRecord(path, "host").read()
    assert str(error.value).startswith(f"{path}: scopes.host: not vifplug's device record ("
                                       f"{said}")


# --- the CLI: bad input exits 2 before the host is read ---------------------------------------


def test_cli_bad_map_exits_2_naming_file_line_and_key(tmp_path: Path, run_main: Runner) -> None:
    path = tmp_path / "networks.toml"
    path.write_text('[networks.red]\nswitch = "ovs"\nnic = "eth1"\n\n[networks.blue]\n'
                    'switch = "ovs"\nnic = "eth1"\n')
    for extra in ((), ("--dry-run",)):
        result = run_main("host", "apply", "--networks", str(path),
                          "--record", str(tmp_path / "r.json"), *extra)
        assert (result.code, result.stdout) == (2, "")
        assert result.stderr == (f"{path}:3: networks.red.nic: network blue is untagged on "
                                 "uplink eth1 already: networks sharing an uplink need different "
                                 "VLANs (one of them untagged at most)\n")
    assert not (tmp_path / "r.json").exists()


def test_cli_mixed_map_exits_2_listing_each_type(tmp_path: Path, run_main: Runner) -> None:
    path = tmp_path / "networks.toml"
    path.write_text('[networks.red]\nswitch = "legacy"\nbridge = "red"\n\n[networks.blue]\n'
                    'switch = "ovs"\nbridge = "br-int"\n')
    result = run_main("host", "apply", "--networks", str(path), "--record",
                      str(tmp_path / "r.json"))
    assert result.code == 2
    assert result.stderr.startswith(f"{path}: the map mixes switch types: legacy: red; ovs/ovn: "
                                    "blue (one switch type per host")
    assert not (tmp_path / "r.json").exists()


def test_cli_bad_options_exit_2(tmp_path: Path, run_main: Runner) -> None:
    path = tmp_path / "networks.toml"
    path.write_text("")
    result = run_main("host", "apply", "--networks", str(path), "--datapath-type", "dpdk")
    assert result.code == 2
    assert "invalid choice: 'dpdk'" in result.stderr
    result = run_main("host", "apply", "--networks", str(path), "--netns", "no/such")
    assert result.code == 2
    assert "--netns: expected a network namespace name" in result.stderr


def test_cli_host_unit_prints_the_packaged_unit(run_main: Runner) -> None:
    import sys

    result = run_main("host", "unit")
    assert result.code == 0
    assert f"ExecStart={sys.executable} -m vifplug host apply\n" in result.stdout
    for line in ("Type=oneshot", "RemainAfterExit=yes", "WantedBy=multi-user.target",
                 "Before=libvirtd.service virtqemud.service libvirt-guests.service"):
        assert f"\n{line}\n" in result.stdout
