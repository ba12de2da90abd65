"""A switch transition with guests running, planned without root: the build half
(``plan_host(keep=...)``) leaves the old bridges that hold guests, and their uplink, as they are;
the finish (a plain plan once the guests moved) moves the uplink and removes the old switch;
which bridges hold guests (``guest_holders``); the record of the map last applied."""

from __future__ import annotations

from pathlib import Path

import pytest

from vifplug.errors import VifError
from vifplug.host.network import DeviceRecord
from vifplug.host.transition import empty_map, guest_holders
from vifplug.hostnet import (
    DeleteOwnedLink,
    DeleteOwnedOvsBridge,
    EnsureOvsUplink,
    EnsureOwnedOvsBridge,
    HostMapError,
    HostState,
    LinkState,
    OvsBridgeState,
    OvsPortState,
    Owned,
    OwnedDevice,
    plan_host,
)
from vifplug.netmap import NetworkMap, load_network_map
from vifplug.plan import EnsureLinuxBridge, EnsureMaster

LEGACY = '[networks.red]\nswitch = "legacy"\nnic = "eth1"\n'
OVS = '[networks.red]\nswitch = "ovs"\nnic = "eth1"\n'
RED = OwnedDevice("red", "bridge", "red")


def load(tmp_path: Path, text: str) -> NetworkMap:
    path = tmp_path / "networks.toml"
    path.write_text(text)
    return load_network_map(path)


def link(name: str, kind: str | None = "veth", master: str | None = None) -> LinkState:
    return LinkState(name, kind, 1500, True, master)


def on_red(*guests: str) -> tuple[HostState, Owned]:
    """A host converged to LEGACY, with guests' TAPs on red."""
    links = {"eth1": link("eth1", master="red"), "red": link("red", "bridge"),
             **{tap: link(tap, "tun", "red") for tap in guests}}
    return HostState(links, {}, {}, {}), Owned({"red": RED}, {"eth1": "red"})


def on_br_eth1(*guests: str) -> tuple[HostState, Owned]:
    """A host converged to OVS (userspace datapath: no kernel master), guests on br-eth1."""
    links = {"eth1": link("eth1"), **{tap: link(tap, "tun") for tap in guests}}
    bridges = {"br-eth1": OvsBridgeState("br-eth1", True, "netdev",
                                         tuple(sorted(("br-eth1", "eth1", *guests))))}
    ports = {"br-eth1": OvsPortState("br-eth1", "br-eth1", False, ("br-eth1",)),
             "eth1": OvsPortState("eth1", "br-eth1", True, ("eth1",), 4094, (), "access"),
             **{tap: OvsPortState(tap, "br-eth1", False, (tap,), 4094) for tap in guests}}
    return HostState(links, bridges, ports, {}), Owned()


def test_guest_holders_are_vifplug_bridges_with_foreign_ports() -> None:
    assert guest_holders(*on_red("vnet0")) == {"red"}
    assert guest_holders(*on_red()) == frozenset()
    assert guest_holders(*on_br_eth1("vnet0")) == {"br-eth1"}
    assert guest_holders(*on_br_eth1()) == frozenset()
    state, _ = on_red("vnet0")
    assert guest_holders(state, Owned()) == frozenset()  # an operator's bridge: not vifplug's


def test_legacy_to_ovs_builds_beside_the_old_bridge_then_finishes(tmp_path: Path) -> None:
    new = load(tmp_path, OVS)
    state, owned = on_red("vnet0")
    with pytest.raises(HostMapError, match="still holds vnet0"):
        plan_host(new, state, owned)  # without keep: refused, as host apply always did
    build = plan_host(new, state, owned, keep=guest_holders(state, owned))
    assert build.steps == (EnsureOwnedOvsBridge("br-eth1"),)  # red and its uplink stay
    mid = owned.union(build.owned_after)
    assert mid == owned
    # the guests moved: br-eth1 has vnet0, red only its uplink
    links = {"eth1": link("eth1", master="red"), "red": link("red", "bridge"),
             "vnet0": link("vnet0", "tun")}
    moved = HostState(links, {"br-eth1": OvsBridgeState("br-eth1", True, "", ("br-eth1",
                                                                             "vnet0"))},
                      {"vnet0": OvsPortState("vnet0", "br-eth1", False, ("vnet0",), 4094)}, {})
    finish = plan_host(new, moved, mid)
    assert finish.steps == (DeleteOwnedLink(RED),
                            EnsureOvsUplink("br-eth1", "eth1", ("eth1",), 4094, (), "access"))
    assert finish.owned_after == Owned()


def test_ovs_to_legacy_builds_the_bridge_without_its_uplink(tmp_path: Path) -> None:
    new = load(tmp_path, LEGACY)
    state, owned = on_br_eth1("vnet0")
    with pytest.raises(HostMapError, match="still holds vnet0"):
        plan_host(new, state, owned)
    build = plan_host(new, state, owned, keep=guest_holders(state, owned))
    assert build.steps == (EnsureLinuxBridge("red"),)  # no EnsureMaster(eth1): still in OVS
    assert build.owned_after == Owned({"red": RED}, {"eth1": "red"})
    links = {"eth1": link("eth1"), "red": link("red", "bridge"),
             "vnet0": link("vnet0", "tun", "red")}
    moved = HostState(links, {"br-eth1": OvsBridgeState("br-eth1", True, "",
                                                        ("br-eth1", "eth1"))},
                      {"eth1": OvsPortState("eth1", "br-eth1", True, ("eth1",), 4094)}, {})
    finish = plan_host(new, moved, owned.union(build.owned_after))
    assert finish.steps == (EnsureMaster("eth1", "red"), DeleteOwnedOvsBridge("br-eth1"))


def test_keep_refuses_a_new_ovs_bridge_named_like_the_old_linux_bridge(tmp_path: Path) -> None:
    new = load(tmp_path, '[networks.red]\nswitch = "ovs"\nnic = "eth1"\nbridge = "red"\n')
    state, owned = on_red("vnet0")
    with pytest.raises(HostMapError) as caught:
        plan_host(new, state, owned, keep={"red"})
    assert str(caught.value) == (
        f"{tmp_path}/networks.toml:4: networks.red.bridge: vifplug's Linux bridge red still "
        "holds guests: the OVS bridge of the same name cannot be built beside it; name another "
        "bridge here, or stop the guests")


def test_the_record_keeps_the_map_last_applied(tmp_path: Path) -> None:
    record = DeviceRecord(tmp_path / "record.json", "netns-x")
    assert record.applied() is None
    first = load(tmp_path, LEGACY)
    with record.locked():
        record.write(Owned({"red": RED}), applied=first)
        record.write(Owned({"red": RED}))  # without applied: the map stays
    applied = record.applied()
    assert applied is not None
    assert applied.text == LEGACY
    assert applied.networks == first.networks
    assert str(tmp_path / "networks.toml") in applied.path
    other = DeviceRecord(tmp_path / "record.json", "host")  # another scope: its own
    assert other.applied() is None
    with record.locked():
        record.write(Owned(), applied=load(tmp_path, OVS))
    assert record.applied().networks == load(tmp_path, OVS).networks  # type: ignore[union-attr]


def test_a_damaged_applied_map_names_the_record(tmp_path: Path) -> None:
    path = tmp_path / "record.json"
    path.write_text('{"format": 1, "scopes": {}, "applied": {"host": {"path": "/x.toml", '
                    '"text": "[networks.red]\\nswitch = 5\\n"}}}')
    with pytest.raises(VifError) as caught:
        DeviceRecord(path, "host").applied()
    assert str(path) in str(caught.value)
    assert "move" in str(caught.value)


def test_empty_map_makes_every_network_move(tmp_path: Path) -> None:
    from vifplug.guests import moving_networks

    new = load(tmp_path, OVS)
    assert moving_networks(empty_map(new), new) == {"red"}
