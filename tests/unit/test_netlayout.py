"""The map's layout on the host (issue 11, items 2 and 3): the OVS bridges (one per uplink), each
network's bridge and access tag, the Linux bridges' ports, the one-switch-type rule, the pure part
of "a Linux bridge must be free or vifplug's", and the hook using the computed bridges."""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from vifplug.hook import rewrite
from vifplug.names import IFNAMSIZ, uplink_bridge_name, vlan_device_name
from vifplug.netlayout import (
    LegacyBridge,
    OvsBridge,
    legacy_bridges,
    legacy_device_problems,
    one_switch_type_problem,
    ovs_bridges,
    resolve,
)
from vifplug.netmap import Bond, NetworkMap, Nic, OvsNetwork, load_network_map

OVS = 'switch = "ovs"\n'
L = 'switch = "legacy"\n'
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
Runner = Callable[..., Any]


def load(tmp_path: Path, text: str) -> NetworkMap:
    path = tmp_path / "networks.toml"
    path.write_text(text)
    return load_network_map(path)


def net(name: str, body: str) -> str:
    return f"[networks.{name}]\n{body}"


ETH1, ETH2, BOND0 = Nic("eth1"), Nic("eth2"), Bond("bond0", ("eth2", "eth3"), "balance-slb")
BOND_TEXT = 'bond = {name = "bond0", nics = ["eth2", "eth3"], mode = "balance-slb"}\n'

# (map text, the bridges, {network: (its bridge, its guests' access tag)})
LAYOUTS = [
    pytest.param(net("red", OVS + 'nic = "eth1"\n'),
                 [OvsBridge("br-eth1", ETH1, (), 4094, None, ("red",), named=False)],
                 {"red": ("br-eth1", 4094)}, id="one untagged network on a NIC"),
    pytest.param(net("red", OVS + 'nic = "eth1"\n')
                 + net("blue", OVS + 'nic = "eth1"\nvlan = 100\n')
                 + net("green", OVS + 'nic = "eth1"\nvlan = 200\nmtu = 9000\n'),
                 [OvsBridge("br-eth1", ETH1, (100, 200), 4094, 9000, ("blue", "green", "red"),
                            named=False)],
                 {"red": ("br-eth1", 4094), "blue": ("br-eth1", 100), "green": ("br-eth1", 200)},
                 id="one uplink: one bridge, networks told apart by tag"),
    pytest.param(net("red", OVS + 'nic = "eth1"\n') + net("blue", OVS + 'nic = "eth2"\n'),
                 [OvsBridge("br-eth1", ETH1, (), 4094, None, ("red",), named=False),
                  OvsBridge("br-eth2", ETH2, (), 4094, None, ("blue",), named=False)],
                 {"red": ("br-eth1", 4094), "blue": ("br-eth2", 4094)},
                 id="two untagged networks on two uplinks: two bridges"),
    pytest.param(net("red", OVS + 'nic = "eth1"\nvlan = 7\n')
                 + net("blue", OVS + BOND_TEXT + "vlan = 7\n"),
                 [OvsBridge("br-bond0", BOND0, (7,), None, None, ("blue",), named=False),
                  OvsBridge("br-eth1", ETH1, (7,), None, None, ("red",), named=False)],
                 {"red": ("br-eth1", 7), "blue": ("br-bond0", 7)},
                 id="one VLAN on two uplinks: two bridges, a bond's named after the bond"),
    pytest.param(net("red", OVS + 'nic = "eth1"\n') + net("blue", OVS + 'nic = "eth1"\nvlan = 5\n'
                                                        'bridge = "br-phys"\n'),
                 [OvsBridge("br-phys", ETH1, (5,), 4094, None, ("blue", "red"), named=True)],
                 {"red": ("br-phys", 4094), "blue": ("br-phys", 5)},
                 id="a bridge one network names is its uplink's bridge"),
    pytest.param(net("int", OVS + 'bridge = "br-int"\n') + net("tag", OVS + 'bridge = "br-int"\n'
                                                            'vlan = 9\nmtu = 1450\n')
                 + net("red", OVS + 'nic = "eth1"\ntrunk = [10, 4094]\n')
                 + net("blue", OVS + 'nic = "eth1"\n'),
                 [OvsBridge("br-eth1", ETH1, (10, 4094), 4093, None, ("blue", "red"), named=False),
                  OvsBridge("br-int", None, (), None, 1450, ("int", "tag"), named=True)],
                 {"int": ("br-int", None), "tag": ("br-int", 9), "red": ("br-eth1", None),
                  "blue": ("br-eth1", 4093)},
                 id="internal bridges as before; a trunk's tags, the native VLAN moves off 4094"),
    pytest.param(net("red", OVS + 'nic = "enp129s0f0np0"\n'),
                 [OvsBridge("br-enp129s-9309", Nic("enp129s0f0np0"), (), 4094, None, ("red",),
                            named=False)],
                 {"red": ("br-enp129s-9309", 4094)}, id="a long uplink name: a hashed name"),
    pytest.param(net("red", L + 'nic = "eth1"\n') + net("o", 'switch = "ovn"\n'), [], {},
                 id="no ovs network: no OVS bridge (OVN's integration bridge is OVN's)"),
]


@pytest.mark.parametrize(("text", "bridges", "networks"), LAYOUTS)
def test_ovs_bridges(text: str, bridges: list[OvsBridge],
                     networks: dict[str, tuple[str, int | None]], tmp_path: Path) -> None:
    host_map = load(tmp_path, text)
    assert list(ovs_bridges(host_map)) == bridges
    got = {}
    for name, network in host_map.networks.items():
        if isinstance(network, OvsNetwork):
            got[name] = (network.bridge, network.access_tag)
    assert got == networks
    assert resolve(host_map.networks) == host_map.networks  # idempotent
    for bridge in bridges:
        assert len(bridge.name.encode()) < IFNAMSIZ


def test_the_layout_does_not_depend_on_the_order_of_the_tables(tmp_path: Path) -> None:
    tables = [net("a", OVS + 'nic = "eth1"\n'), net("b", OVS + 'nic = "eth1"\nvlan = 3\n'),
              net("c", OVS + 'nic = "eth1"\nvlan = 4\nbridge = "br-c"\n'),
              net("d", OVS + 'bond = {name = "bond0", nics = ["eth2", "eth3"]}\n'),
              net("e", OVS + 'bridge = "br-int"\n')]
    seen = set()
    for order in itertools.permutations(tables):
        host_map = load(tmp_path, "".join(order))
        seen.add((ovs_bridges(host_map), tuple(sorted(host_map.networks.items()))))
    assert len(seen) == 1
    (bridges, _), = seen
    assert [(b.name, b.networks) for b in bridges] == [
        ("br-bond0", ("d",)), ("br-c", ("a", "b", "c")), ("br-int", ("e",))]


def test_an_error_does_not_depend_on_the_order_of_the_tables(tmp_path: Path) -> None:
    """Two networks in conflict: the error names the later one by name, in either file order."""
    a, b = net("a", OVS + 'nic = "eth1"\n'), net("b", OVS + 'nic = "eth1"\n')
    messages = set()
    for text in (a + b, b + a):
        with pytest.raises(Exception) as caught:  # noqa: PT011 - the message is the point
            load(tmp_path, text)
        messages.add(str(caught.value).split(": ", 1)[1])
    assert messages == {"networks.b.nic: network a is untagged on uplink eth1 already: networks "
                        "sharing an uplink need different VLANs (one of them untagged at most)"}


def test_derived_names_are_stable_across_runs() -> None:
    code = ("from vifplug.names import uplink_bridge_name as b, vlan_device_name as v\n"
            "print(b('eth1'), b('enp129s0f0np0'), v('eth1', 100), v('enp129s0f0np0', 4000))")
    outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True, env={"PYTHONHASHSEED": seed,
                                               "PYTHONPATH": ":".join(sys.path)}).stdout
               for seed in ("0", "1", "random")}
    assert outputs == {"br-eth1 br-enp129s-9309 eth1.100 enp12-9309.4000\n"}


@pytest.mark.parametrize("uplink", ["e", "eth1", "bond0", "enp3s0f1", "a" * 12, "a" * 13,
                                    "enp129s0f0np0", "x" * 15])
def test_derived_names_fit_ifnamsiz(uplink: str) -> None:
    assert len(uplink_bridge_name(uplink)) <= IFNAMSIZ - 1
    for vlan in (1, 100, 4094):
        assert len(vlan_device_name(uplink, vlan)) <= IFNAMSIZ - 1
        assert vlan_device_name(uplink, vlan).endswith(f".{vlan}")
    assert uplink_bridge_name(uplink) != uplink_bridge_name(uplink + "x")


# --- Linux bridges --------------------------------------------------------------------------

LEGACY = (net("red", L + 'nic = "eth1"\nmtu = 1500\n')
          + net("blue", L + 'nic = "eth1"\nvlan = 100\nbridge = "br-blue"\nmtu = 9000\n')
          + net("green", L + 'bond = {name = "bond0", nics = ["eth2", "eth3"]}\nvlan = 5\n')
          + net("inside", L))


def test_legacy_bridges(tmp_path: Path) -> None:
    bond = Bond("bond0", ("eth2", "eth3"))
    assert legacy_bridges(load(tmp_path, LEGACY)) == (
        LegacyBridge("br-blue", "blue", ETH1, 100, "eth1.100", 9000, 9000),
        LegacyBridge("green", "green", bond, 5, "bond0.5", None, None),
        LegacyBridge("inside", "inside", None, None, None, None, None),
        LegacyBridge("red", "red", ETH1, None, "eth1", 1500, 9000),
    )


def test_legacy_device_problems(tmp_path: Path) -> None:
    host_map = load(tmp_path, LEGACY)
    nics = {"eth1", "eth2", "eth3"}
    assert legacy_device_problems(host_map, nics, owned=()) == ()
    assert legacy_device_problems(host_map, nics | {"red", "bond0", "eth1.100"},
                                  owned={"red", "bond0", "eth1.100"}) == ()
    problems = legacy_device_problems(host_map, {"eth1", "br-blue", "eth1.100", "bond0", "red"},
                                      owned={"red"})
    path = host_map.path
    assert [str(p) for p in problems] == [
        f"{path}:9: networks.blue.bridge: br-blue exists on this host and is not vifplug's: "
        "vifplug makes this Linux bridge itself; remove the device or rename it here",
        f"{path}:8: networks.blue.vlan: eth1.100 exists on this host and is not vifplug's: "
        "vifplug makes this VLAN device itself; remove the device or rename it here",
        f"{path}:13: networks.green.bond: bond0 exists on this host and is not vifplug's: "
        "vifplug makes this bond itself; remove the device or rename it here",
        f"{path}:13: networks.green.bond: NIC eth2 does not exist on this host",
        f"{path}:13: networks.green.bond: NIC eth3 does not exist on this host",
    ]


# --- one switch type per host ---------------------------------------------------------------


@pytest.mark.parametrize(("switches", "mixed"), [
    ({"a": "legacy", "b": "legacy"}, False),
    ({"a": "ovs", "b": "ovn"}, False),
    ({"a": "legacy", "d": "direct"}, False),
    ({"a": "ovs", "d": "direct"}, False),
    ({}, False),
    ({"a": "legacy", "b": "ovs"}, True),
    ({"a": "legacy", "b": "ovn"}, True),
])
def test_which_switch_types_mix(switches: dict[str, str], mixed: bool, tmp_path: Path) -> None:
    body = {"legacy": L, "ovs": OVS + 'bridge = "br-int"\n', "ovn": 'switch = "ovn"\n',
            "direct": 'switch = "direct"\ninterface = "eth9"\n'}
    host_map = load(tmp_path, "".join(net(n, body[s]) for n, s in switches.items()))
    assert (one_switch_type_problem(host_map) is not None) is mixed
    assert one_switch_type_problem(host_map._replace(allow_mixed=True)) is None


def test_a_mixed_map_loads_and_host_apply_is_told_which_networks(tmp_path: Path) -> None:
    text = (net("red", L) + net("blue", OVS + 'bridge = "br-int"\n') + net("o", 'switch = "ovn"\n')
            + net("pink", L) + net("d", 'switch = "direct"\ninterface = "eth9"\n'))
    host_map = load(tmp_path, text)  # the hook must keep working on it
    assert str(one_switch_type_problem(host_map)) == (
        f"{host_map.path}: the map mixes switch types: legacy: pink, red; ovs/ovn: blue, o (one "
        "switch type per host, so that a transition moves the whole host at once; allow_mixed = "
        "true at the top of the map allows it, unsupported)")
    assert one_switch_type_problem(load(tmp_path, "allow_mixed = true\n" + text)) is None


# --- the hook uses the computed bridge ------------------------------------------------------


def test_the_hook_puts_a_guest_on_its_uplinks_bridge(tmp_path: Path) -> None:
    """examples/domain.xml has a guest on 'blue' (OVS) and one on 'red' (Linux bridge)."""
    host_map = load(tmp_path, net("blue", OVS + 'nic = "eth1"\n')
                    + net("red", OVS + 'nic = "eth1"\nvlan = 100\n'))
    domain = etree.fromstring(rewrite((EXAMPLES / "domain.xml").read_bytes(), host_map).encode())
    got = {}
    for iface in domain.iterfind("devices/interface[@type='bridge']"):
        tags = [tag.get("id") for tag in iface.iterfind("vlan/tag")]
        got[iface.find("mac").get("address")] = (iface.find("source").get("bridge"), tags,
                                                 iface.find("virtualport").get("type"))
    assert got == {"fa:16:3e:12:34:56": ("br-eth1", ["4094"], "openvswitch"),
                   "fa:16:3e:65:43:21": ("br-eth1", ["100"], "openvswitch")}


def test_host_show_names_the_computed_bridges(monkeypatch: pytest.MonkeyPatch,
                                              run_main: Runner) -> None:
    """``vifplug host show`` on examples/host-networks.toml, on a fake host where only br-eth1
    and br-int exist: each network's line names its bridge, computed or given."""
    import vifplug.host
    from vifplug.host import Host
    from vifplug.host.fake import FakeNetlink, FakeOvsdb

    def fake_host(**_: object) -> Host:
        return Host.using(FakeNetlink(), FakeOvsdb(bridges=("br-int", "br-eth1")))

    monkeypatch.setattr(vifplug.host, "Host", fake_host)
    path = EXAMPLES / "host-networks.toml"
    shown = run_main("host", "show", "--networks", str(path))
    assert (shown.code, shown.stderr) == (0, "")
    lines = shown.stdout.splitlines()
    # then what host apply would change (tests/unit/test_hostnet.py, test_host_apply.py)
    assert lines[7].startswith(("drift", "host apply would refuse this map:"))
    assert lines[:7] == [
        f"{path}: 6 network(s)",
        "  blue             ovs     OVS bridge br-eth1, vlan 100, uplink NIC eth1  [present]",
        "  green            ovs     OVS bridge br-eth1, vlan 200, uplink NIC eth1  [present]",
        "  internal         ovs     OVS bridge br-int, vlan 5  [present]",
        "  red              ovs     OVS bridge br-eth1, uplink NIC eth1, MTU 9000, untagged on "
        "the uplink (vlan 4094 inside the bridge)  [present]",
        "  storage          ovs     OVS bridge br-bond0, vlan 300, uplink bond bond0 (802.3ad: "
        "eth3, eth4)  [MISSING]",
        "  yellow           ovs     OVS bridge br-phys2, uplink NIC eth2, untagged on the uplink "
        "(vlan 4094 inside the bridge)  [MISSING]",
    ]
