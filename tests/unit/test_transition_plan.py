"""A switch transition with guests running, planned without root: the build half
(``plan_host(keep=...)``) leaves the old bridges that hold guests, and their uplink, as they are;
the finish (a plain plan once the guests moved) moves the uplink and removes the old switch;
which bridges hold guests (``guest_holders``); the record of the map last applied."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


# --- the orchestration, its host and libvirt edges replaced -------------------------------------


class Edges:
    """read_host_state, the engine, read_guests/plan_moves and move_guests of
    vifplug.host.transition replaced: the states it reads in turn, the plans it applies, the
    guest moves it asks for (each may be made to fail)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, states: list[HostState],
                 moves: list[str]) -> None:
        import vifplug.host.transition as transition_module
        from vifplug.guests import GuestMove

        self.states = states
        self.applied: list[tuple[str, ...]] = []
        self.moved: list[tuple[str, str]] = []
        self.fail_apply: int | None = None
        self.fail_move: int | None = None
        self.hook_map_at_rollback: list[str] = []
        planned = [GuestMove(name, (), "restore", "", None, None) for name in moves]
        monkeypatch.setattr(transition_module, "read_host_state",
                            lambda host: self.states.pop(0) if len(self.states) > 1
                            else self.states[0])
        monkeypatch.setattr(transition_module, "read_guests", lambda conn: [])
        monkeypatch.setattr(transition_module, "plan_moves", lambda *a, **k: planned)
        monkeypatch.setattr(transition_module, "_apply", self.apply)
        monkeypatch.setattr(transition_module, "move_guests", self.move)

    def apply(self, plan: Any, host: Any) -> None:
        from vifplug.host.errors import StepFailed

        self.applied.append(tuple(step.describe() for step in plan.steps))
        if self.fail_apply == len(self.applied):
            step = plan.steps[-1]
            raise StepFailed(step, RuntimeError("injected"), device=step.device,
                             rolled_back=True)

    def move(self, conn: Any, old: NetworkMap, new: NetworkMap, **kwargs: Any) -> list[Any]:
        from vifplug.guests import GuestMoveError

        self.moved.append((old.text, new.text))
        if self.fail_move == len(self.moved):
            kwargs["before_rollback"]()
            self.hook_map_at_rollback.append(Path(new.path).read_text())
            raise GuestMoveError("domain 'web1': interface fa:16:3e:00:00:11: injected")
        return []


def start(tmp_path: Path) -> tuple[NetworkMap, DeviceRecord]:
    """The host ran LEGACY (recorded), the operator wrote OVS at the map's path."""
    record = DeviceRecord(tmp_path / "record.json", "host")
    with record.locked():
        record.write(Owned({"red": RED}, {"eth1": "red"}), applied=load(tmp_path, LEGACY))
    return load(tmp_path, OVS), record


def moved_state() -> HostState:
    links = {"eth1": link("eth1", master="red"), "red": link("red", "bridge"),
             "vnet0": link("vnet0", "tun")}
    return HostState(links, {"br-eth1": OvsBridgeState("br-eth1", True, "", ("br-eth1",
                                                                            "vnet0"))},
                     {"vnet0": OvsPortState("vnet0", "br-eth1", False, ("vnet0",), 4094)}, {})


def test_transition_phases_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vifplug.host.transition import transition

    new, record = start(tmp_path)
    edges = Edges(monkeypatch, [on_red("vnet0")[0], moved_state()], ["web1"])
    done = transition(new, None, record, None, uplink_first=False)  # type: ignore[arg-type]
    assert done is not None
    assert edges.applied == [("ensure OVS bridge br-eth1 (vifplug-owner=host)",),
                             ("delete Linux bridge red (vifplug's, for network red)",
                              "ensure OVS port eth1 on br-eth1 (vlan_mode=access, tag=4094)")]
    assert edges.moved == [(LEGACY, OVS)]
    assert record.read() == Owned()
    assert record.applied().text == OVS  # type: ignore[union-attr]
    assert set(done.timings) == {"build", "hybrid", "guests", "finish"}


def test_a_failed_finish_moves_the_guests_back_and_undoes_the_build(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vifplug.host.transition import TransitionError, transition

    new, record = start(tmp_path)
    before = record.path.read_text()
    back = HostState(moved_state().links | {"vnet0": link("vnet0", "tun", "red")},
                     {"br-eth1": OvsBridgeState("br-eth1", True, "", ("br-eth1",))}, {}, {})
    edges = Edges(monkeypatch, [on_red("vnet0")[0], moved_state(), back], ["web1"])
    edges.fail_apply = 2
    with pytest.raises(TransitionError) as caught:
        transition(new, None, record, None, uplink_first=False)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "finishing (uplink, old switch) failed" in message
    assert "the guests moved back; the new switch's build undone" in message
    assert f"{tmp_path}/networks.toml.rejected" in message
    assert edges.moved == [(LEGACY, OVS), (OVS, LEGACY)]
    assert edges.applied[-1] == ("delete OVS bridge br-eth1 (vifplug's)",)
    assert (tmp_path / "networks.toml").read_text() == LEGACY  # the hook's map: the old one
    assert (tmp_path / "networks.toml.rejected").read_text() == OVS
    assert record.path.read_text() == before


def test_a_failed_guest_move_puts_the_old_map_back_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vifplug.host.transition import TransitionError, transition

    new, record = start(tmp_path)
    before = record.path.read_text()
    edges = Edges(monkeypatch, [on_red("vnet0")[0],
                                HostState(on_red("vnet0")[0].links,
                                          {"br-eth1": OvsBridgeState("br-eth1", True)}, {},
                                          {})], ["web1"])
    edges.fail_move = 1
    with pytest.raises(TransitionError) as caught:
        transition(new, None, record, None, uplink_first=False)  # type: ignore[arg-type]
    assert "moving the guests failed: domain 'web1': interface fa:16:3e:00:00:11" in str(
        caught.value)
    assert edges.hook_map_at_rollback == [LEGACY]  # before the guests were moved back
    assert edges.applied[-1] == ("delete OVS bridge br-eth1 (vifplug's)",)
    assert record.path.read_text() == before


def test_a_failed_build_moves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vifplug.host.transition import TransitionError, transition

    new, record = start(tmp_path)
    before = record.path.read_text()
    edges = Edges(monkeypatch, [on_red("vnet0")[0]], ["web1"])
    edges.fail_apply = 1
    with pytest.raises(TransitionError, match="building the new switch failed, nothing moved"):
        transition(new, None, record, None)  # type: ignore[arg-type]
    assert edges.moved == []
    assert (tmp_path / "networks.toml").read_text() == OVS  # untouched
    assert record.path.read_text() == before


def test_no_map_recorded_refuses_to_move(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from vifplug.host.transition import transition

    new = load(tmp_path, OVS)
    record = DeviceRecord(tmp_path / "record.json", "host")
    Edges(monkeypatch, [on_red("vnet0")[0]], ["web1"])
    with pytest.raises(HostMapError, match="no map is recorded as applied on this host, so "
                       r"the guests \(web1\) could not be moved back"):
        transition(new, None, record, None)  # type: ignore[arg-type]


def test_no_guest_to_move_is_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vifplug.host.transition import transition

    new, record = start(tmp_path)
    Edges(monkeypatch, [on_red()[0]], [])
    assert transition(new, None, record, None) is None  # type: ignore[arg-type]


def test_keep_uplinks_false_moves_the_uplink_but_keeps_the_bridge(tmp_path: Path) -> None:
    """The uplink-first order (``transition(uplink_first=True)``): the kept bridges stay, their
    uplinks move to the new switch."""
    from vifplug.hostnet import ReleasePort
    from vifplug.plan import DeleteOvsPort

    state, owned = on_red("vnet0")
    plan = plan_host(load(tmp_path, OVS), state, owned, keep={"red"}, keep_uplinks=False)
    assert plan.steps == (ReleasePort("eth1", "red"), EnsureOwnedOvsBridge("br-eth1"),
                          EnsureOvsUplink("br-eth1", "eth1", ("eth1",), 4094, (), "access"))
    assert plan.owned_after == Owned({"red": RED})
    state, owned = on_br_eth1("vnet0")
    plan = plan_host(load(tmp_path, LEGACY), state, owned, keep={"br-eth1"},
                     keep_uplinks=False)
    assert plan.steps == (EnsureLinuxBridge("red"), EnsureMaster("eth1", "red"),
                          DeleteOvsPort("eth1"))


def test_uplink_first_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """build, then the uplink (the old bridge kept with its guest), then the guests, then the
    old bridge goes; a failed uplink step undoes the build and moves no guest."""
    from vifplug.host.transition import TransitionError, transition

    new, record = start(tmp_path)
    on_ovs_uplink = HostState(
        {"eth1": link("eth1"), "red": link("red", "bridge"), "vnet0": link("vnet0", "tun")},
        {"br-eth1": OvsBridgeState("br-eth1", True, "", ("br-eth1", "eth1", "vnet0"))},
        {"eth1": OvsPortState("eth1", "br-eth1", True, ("eth1",), 4094, (), "access"),
         "vnet0": OvsPortState("vnet0", "br-eth1", False, ("vnet0",), 4094)}, {})
    built = HostState(on_red("vnet0")[0].links, {"br-eth1": OvsBridgeState(
        "br-eth1", True, "", ("br-eth1",))}, {}, {})
    edges = Edges(monkeypatch, [on_red("vnet0")[0], built, on_ovs_uplink], ["web1"])
    done = transition(new, None, record, None)  # type: ignore[arg-type]
    assert done is not None
    assert edges.applied == [("ensure OVS bridge br-eth1 (vifplug-owner=host)",),
                             ("release eth1 from red",
                              "ensure OVS port eth1 on br-eth1 (vlan_mode=access, tag=4094)"),
                             ("delete Linux bridge red (vifplug's, for network red)",)]
    assert set(done.timings) == {"build", "hybrid", "uplink", "guests", "finish"}
    assert record.read() == Owned()

    new, record = start(tmp_path)
    edges = Edges(monkeypatch, [on_red("vnet0")[0], built, built], ["web1"])
    edges.fail_apply = 2
    with pytest.raises(TransitionError) as caught:
        transition(new, None, record, None)  # type: ignore[arg-type]
    assert "moving the uplink failed, no guest moved" in str(caught.value)
    assert "the new switch's build undone" in str(caught.value)
    assert edges.moved == []
    assert edges.applied[-1] == ("delete OVS bridge br-eth1 (vifplug's)",)
