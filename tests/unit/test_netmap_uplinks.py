"""networks.toml uplinks (issue 11, items 1 and 2): the keys, and every rule with its exact
``file:line: networks.X.key: message``."""

from __future__ import annotations

from pathlib import Path

import pytest

from vifplug.netmap import (
    Bond,
    LegacyNetwork,
    NetworkMapError,
    Nic,
    OvsNetwork,
    load_network_map,
)

L = 'switch = "legacy"\n'
OVS = 'switch = "ovs"\n'
BOND = 'bond = {name = "bond0", nics = ["eth1", "eth2"]}\n'

GOOD = """\
allow_mixed = true

[networks.red]
switch = "legacy"
nic = "eth1"
vlan = 100
mtu = 9000

[networks.plain]
switch = "legacy"
bridge = "br-plain"
[networks.plain.bond]
name = "bond1"
nics = ["eth5"]
mode = "802.3ad"

[networks.blue]
switch = "ovs"
bond = {name = "bond0", nics = ["eth2", "eth3"], mode = "balance-tcp"}
vlan = 200

[networks.inside]
switch = "ovs"
bridge = "br-int"
mtu = 1450
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "networks.toml"
    path.write_text(text)
    return path


def test_uplink_keys(tmp_path: Path) -> None:
    host_map = load_network_map(write(tmp_path, GOOD))
    assert host_map.allow_mixed is True
    assert host_map.networks == {
        "red": LegacyNetwork("red", "red", Nic("eth1"), vlan=100, mtu=9000),
        "plain": LegacyNetwork("plain", "br-plain", Bond("bond1", ("eth5",), "802.3ad")),
        "blue": OvsNetwork("blue", "br-bond0", vlan=200, uplink=Bond("bond0", ("eth2", "eth3"),
                           "balance-tcp"), bridge_given=False),
        "inside": OvsNetwork("inside", "br-int", mtu=1450),
    }
    red, plain, blue = (host_map.networks[n] for n in ("red", "plain", "blue"))
    assert isinstance(red, LegacyNetwork)
    assert isinstance(plain, LegacyNetwork)
    assert (red.port, plain.port) == ("eth1.100", "bond1")
    assert red.describe() == "Linux bridge red, uplink NIC eth1 VLAN 100 (eth1.100), MTU 9000"
    assert isinstance(blue, OvsNetwork)
    assert blue.describe() == ("OVS bridge br-bond0, vlan 200, uplink bond bond0 (balance-tcp: "
                               "eth2, eth3)")
    assert load_network_map(write(tmp_path, "[networks.x]\n" + L)).allow_mixed is False


def test_bond_modes_map_to_ovs() -> None:
    assert Bond("b", ("e1", "e2"), "802.3ad").ovs_mode == ("balance-tcp", "active")
    assert Bond("b", ("e1", "e2"), "balance-tcp").ovs_mode == ("balance-tcp", "active")
    assert Bond("b", ("e1", "e2"), "balance-slb").ovs_mode == ("balance-slb", "off")
    assert Bond("b", ("e1", "e2")).ovs_mode == ("active-backup", "off")


def test_an_existing_map_loads_as_before(tmp_path: Path) -> None:
    text = ('[networks.a]\n' + L + '[networks.b]\n' + L + 'bridge = "a"\n'
            '[networks.c]\n' + OVS + 'bridge = "br-int"\n'
            '[networks.d]\n' + OVS + 'bridge = "br-int"\nvlan = 5\n'
            '[networks.e]\nswitch = "ovn"\n')
    networks = load_network_map(write(tmp_path, text)).networks
    assert networks["b"] == LegacyNetwork("b", "a")  # two uplink-less networks, one bridge
    assert networks["c"] == OvsNetwork("c", "br-int")  # no native VLAN without an uplink
    assert networks["d"] == OvsNetwork("d", "br-int", vlan=5)


BAD = [
    # per network: keys, names, ranges
    ('[networks.a]\n' + L + 'vlan = 5\n',
     "3: networks.a.vlan: needs an uplink ('nic' or 'bond'): a Linux bridge is VLAN-unaware, "
     "the VLAN is a device on the uplink"),
    ('[networks.a]\n' + L + 'nic = "eth1"\nvlan = 4095\n',
     "4: networks.a.vlan: must be between 1 and 4094 (got 4095)"),
    ('[networks.a]\n' + L + 'nic = "eth1"\nmtu = 67\n',
     "4: networks.a.mtu: must be between 68 and 65535 (got 67)"),
    ('[networks.a]\n' + OVS + 'nic = "eth1"\nmtu = 65536\n',
     "4: networks.a.mtu: must be between 68 and 65535 (got 65536)"),
    ('[networks.a]\n' + OVS + 'nic = "eth1"\nmtu = "9000"\n',
     "4: networks.a.mtu: must be an integer (got '9000')"),
    ('[networks.a]\n' + OVS + 'nic = "a-very-long-nic-name"\n',
     "3: networks.a.nic: must be a device name of at most 15 bytes (IFNAMSIZ) "
     "(got 'a-very-long-nic-name')"),
    ('[networks.a]\n' + OVS + 'nic = 1\n', "3: networks.a.nic: must be a string (got 1)"),
    ('[networks.a]\n' + OVS + 'vlan = 5\n',
     "1: networks.a.bridge: required (or an uplink, 'nic' or 'bond', whose bridge vifplug "
     "names)"),
    ('[networks.a]\n' + L + 'nic = "eth1"\n' + BOND,
     "4: networks.a.bond: give one uplink: 'nic' or 'bond', not both"),
    ('[networks.o]\nswitch = "ovn"\nnic = "eth1"\n',
     "3: networks.o.nic: unknown key for switch 'ovn' (known: bandwidth, bridge, "
     "default_portgroup, logical_switch, override, portgroups, switch)"),
    ('[networks.d]\nswitch = "direct"\ninterface = "eth1"\nmtu = 1500\n',
     "4: networks.d.mtu: unknown key for switch 'direct'"),
    ('allow_mixed = "yes"\n', "1: allow_mixed: must be true or false (got 'yes')"),
    ('allowmixed = true\n', "1: allowmixed: unknown key (the map holds [networks.NAME] tables, "
     "allow_mixed and strict)"),
    ('strict = 0\n', "1: strict: must be true or false (got 0)"),
    # bonds
    ('[networks.a]\n' + L + 'bond = "bond0"\n',
     "3: networks.a.bond: must be a table: {name = ..., nics = [...], mode = ...}"),
    ('[networks.a]\n' + L + 'bond = {nics = ["eth1"]}\n', "3: networks.a.bond.name: required"),
    ('[networks.a]\n' + L + 'bond = {name = "bond0", nics = ["eth1"], primary = "eth1"}\n',
     "3: networks.a.bond.primary: unknown key (known: mode, name, nics)"),
    ('[networks.a]\n' + L + 'bond = {name = "bond0", nics = "eth1"}\n',
     "3: networks.a.bond.nics: must be a list of at least one NIC (got 'eth1')"),
    ('[networks.a]\n' + L + 'bond = {name = "bond0", nics = []}\n',
     "3: networks.a.bond.nics: must be a list of at least one NIC (got [])"),
    ('[networks.a]\n' + OVS + 'bond = {name = "bond0", nics = ["eth1"]}\n',
     "3: networks.a.bond.nics: must be a list of at least 2 NICs (an OVS bond has at least 2) "
     "(got ['eth1'])"),
    ('[networks.a]\n' + L + 'bond = {name = "bond0", nics = ["eth 1"]}\n',
     "3: networks.a.bond.nics: must be a device name of only letters, digits, '_', '.' and '-' "
     "(got 'eth 1')"),
    ('[networks.a]\n' + L + 'bond = {name = "bond0", nics = [7]}\n',
     "3: networks.a.bond.nics: must be a string (got 7)"),
    ('[networks.a]\n' + L + 'bond = {name = "bond0", nics = ["eth1", "eth1"]}\n',
     "3: networks.a.bond.nics: must not repeat a NIC"),
    ('[networks.a]\n' + L + 'bond = {name = "bond0", nics = ["bond0"]}\n',
     "3: networks.a.bond.nics: must not hold the bond itself ('bond0')"),
    ('[networks.a]\n' + OVS + 'bond = {name = "bond0", nics = ["eth1", "eth2"], '
     'mode = "balance-rr"}\n',
     "3: networks.a.bond.mode: must be one of active-backup, balance-slb, balance-tcp, 802.3ad "
     "for switch 'ovs' (got 'balance-rr')"),
    ('[networks.a]\n' + L + 'bond = {name = "bond0", nics = ["eth1"], mode = "balance-slb"}\n',
     "3: networks.a.bond.mode: must be one of balance-rr, active-backup, balance-xor, broadcast, "
     "802.3ad, balance-tlb, balance-alb for switch 'legacy' (got 'balance-slb')"),
    ('[networks.a]\n' + L + '[networks.a.bond]\nname = "bond0"\nnics = ["eth1"]\nmode = "lacp"\n',
     "6: networks.a.bond.mode: must be one of balance-rr"),
    # across networks: bonds and NICs
    ('[networks.a]\n' + L + BOND + '[networks.b]\n' + L + 'vlan = 7\n'
     'bond = {name = "bond0", nics = ["eth1"]}\n',
     "7: networks.b.bond: bond bond0 is active-backup of eth1, eth2 in network a: a bond is one "
     "device, give each network on it the same table"),
    ('[networks.a]\n' + L + BOND + '[networks.b]\n' + L +
     'bond = {name = "bond1", nics = ["eth2", "eth3"]}\n',
     "6: networks.b.bond.nics: eth2 is in bond bond0 already (network a): a NIC is in one bond "
     "at most"),
    ('[networks.a]\n' + L + BOND + '[networks.b]\n' + L + 'bond = {name = "eth1", nics = ["x"]}\n',
     "6: networks.b.bond.name: eth1 is a NIC of bond bond0 (network a)"),
    ('[networks.a]\n' + L + 'bond = {name = "bond1", nics = ["bond0"]}\n[networks.b]\n' + L + BOND,
     "6: networks.b.bond.name: bond0 is a NIC of bond bond1 (network a)"),
    ('[networks.a]\n' + L + BOND + '[networks.b]\n' + L +
     'bond = {name = "bond1", nics = ["bond0"]}\n',
     "6: networks.b.bond.nics: bond0 is a bond already (network a): a NIC is in one bond at "
     "most"),
    ('[networks.a]\n' + L + BOND + '[networks.b]\n' + L + 'nic = "eth2"\nbridge = "b"\n',
     "6: networks.b.nic: eth2 is a NIC of bond bond0 (network a): use the bond as the uplink"),
    ('[networks.a]\n' + L + BOND + '[networks.b]\n' + L + 'nic = "bond0"\nbridge = "b"\n',
     "6: networks.b.nic: bond0 is a bond (network a): give the same bond table here"),
    # across networks: shared uplinks and VLANs
    ('[networks.a]\n' + OVS + 'nic = "eth1"\n[networks.b]\n' + OVS + 'nic = "eth1"\n',
     "6: networks.b.nic: network a is untagged on uplink eth1 already: networks sharing an "
     "uplink need different VLANs (one of them untagged at most)"),
    ('[networks.a]\n' + L + 'nic = "eth1"\nvlan = 10\n[networks.b]\n' + L + 'nic = "eth1"\n'
     'vlan = 10\n',
     "8: networks.b.vlan: network a is VLAN 10 on uplink eth1 already: networks sharing an "
     "uplink need different VLANs (one of them untagged at most)"),
    ('[networks.a]\n' + OVS + 'nic = "eth1"\nvlan = 10\n[networks.b]\n' + OVS + 'nic = "eth1"\n'
     'trunk = [5, 10]\n',
     "8: networks.b.trunk: network a is VLAN 10 on uplink eth1 already"),
    ('[networks.a]\n' + OVS + BOND.replace("]", ', "eth3"]') + '[networks.b]\n' + OVS + BOND,
     "6: networks.b.bond: bond bond0 is active-backup of eth1, eth2, eth3 in network a"),
    ('[networks.a]\n' + L + 'nic = "eth1"\n[networks.b]\n' + OVS + 'nic = "eth1"\nvlan = 5\n',
     "6: networks.b.nic: eth1 is the uplink of legacy network a: an uplink is a port of one "
     "switch, Linux bridge or OVS"),
    ('[networks.a]\n' + L + 'nic = "eth1"\n[networks.b]\n' + L + 'nic = "eth2"\nbridge = "a"\n',
     "7: networks.b.bridge: Linux bridge a is network a's too: a Linux bridge with an uplink "
     "carries one network"),
    ('[networks.a]\n' + L + '[networks.b]\n' + L + 'nic = "eth2"\nbridge = "a"\n',
     "6: networks.b.bridge: Linux bridge a is network a's too"),
    ('[networks.a]\n' + L + 'nic = "eth1"\n[networks.d]\nswitch = "direct"\ninterface = "eth1"\n',
     "6: networks.d.interface: eth1 is the uplink of network a, a port of its bridge: macvtap "
     "needs a device no bridge or bond holds"),
    ('[networks.a]\n' + L + BOND + '[networks.d]\nswitch = "direct"\ninterface = "eth2"\n',
     "6: networks.d.interface: eth2 is a NIC of bond bond0 (network a): macvtap needs a device "
     "no bridge or bond holds"),
    # OVS bridges
    ('[networks.a]\n' + OVS + 'nic = "eth1"\nbridge = "br-x"\n[networks.b]\n' + OVS +
     'nic = "eth1"\nbridge = "br-y"\nvlan = 5\n',
     "8: networks.b.bridge: uplink eth1 is on OVS bridge br-x (network a): one OVS bridge per "
     "uplink (a port is on one bridge)"),
    ('[networks.a]\n' + OVS + 'nic = "eth1"\nbridge = "br-x"\n[networks.b]\n' + OVS +
     'nic = "eth2"\nbridge = "br-x"\n',
     "8: networks.b.bridge: OVS bridge br-x has uplink eth1 (network a): one uplink per bridge"),
    ('[networks.a]\n' + OVS + 'nic = "eth1"\nbridge = "br-x"\n[networks.b]\n' + OVS +
     'bridge = "br-x"\n',
     "7: networks.b.bridge: OVS bridge br-x has uplink eth1 (network a): give this network the "
     "same uplink, or another bridge"),
    ('[networks.a]\n' + OVS + 'bridge = "br-x"\n[networks.b]\n' + OVS + 'nic = "eth1"\n'
     'bridge = "br-x"\n',
     "7: networks.b.bridge: br-x is network a's host-internal bridge (no uplink): give this "
     "network another bridge, or that one the same uplink"),
    ('[networks.a]\n' + OVS + 'nic = "eth1"\n[networks.b]\n' + OVS + 'bridge = "br-eth1"\n',
     "3: networks.a.nic: the OVS bridge vifplug names for uplink eth1, br-eth1, is network b's "
     "OVS bridge already: name this network's bridge with 'bridge'"),
    ('[networks.a]\n' + OVS + 'nic = "eth1"\n[networks.b]\n' + L + 'bridge = "br-eth1"\n',
     "3: networks.a.nic: the OVS bridge vifplug names for uplink eth1, br-eth1, is network b's "
     "Linux bridge already"),
    ('[networks.a]\n' + OVS + 'nic = "eth1"\n[networks.b]\n' + L + 'nic = "br-eth1"\n',
     "3: networks.a.nic: the OVS bridge vifplug names for uplink eth1, br-eth1, is an uplink "
     "NIC or bond (network b) already"),
    ('[networks.o]\nswitch = "ovn"\n[networks.a]\n' + OVS + 'nic = "eth1"\nbridge = "br-int"\n',
     "6: networks.a.bridge: br-int is OVN network o's integration bridge already: an uplink's "
     "OVS bridge must be a device of its own"),
    ('[networks.a]\n' + OVS + 'nic = "eth1"\nbridge = "eth2"\n[networks.d]\nswitch = "direct"\n'
     'interface = "eth2"\n',
     "4: networks.a.bridge: eth2 is network d's macvtap NIC already"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_uplinks_name_file_line_and_key(text: str, message: str, tmp_path: Path) -> None:
    path = write(tmp_path, text)
    with pytest.raises(NetworkMapError) as caught:
        load_network_map(path)
    assert str(caught.value).startswith(f"{path}:{message}")


def test_derived_names_that_collide_are_refused(tmp_path: Path) -> None:
    """Two long uplink names whose derived bridges would be one (found by search: the 7-character
    prefix and the 16-bit hash agree) must not share a bridge."""
    from vifplug.names import uplink_bridge_name

    first = "enp129s0f0np0"
    second = next(f"enp129s{n:06d}" for n in range(10**6)
                  if uplink_bridge_name(f"enp129s{n:06d}") == uplink_bridge_name(first))
    path = write(tmp_path, f'[networks.a]\n{OVS}nic = "{first}"\n'
                           f'[networks.b]\n{OVS}nic = "{second}"\n')
    with pytest.raises(NetworkMapError) as caught:
        load_network_map(path)
    assert str(caught.value) == (
        f"{path}:6: networks.b.nic: the OVS bridge vifplug names for uplink {second}, "
        f"{uplink_bridge_name(first)}, is the bridge of uplink {first} already: name this "
        "network's bridge with 'bridge'")
