"""networks.toml portgroups, network-wide bandwidth / override / trust: every rule, and errors
that name the file, the line and the key exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from vifplug.netmap import (
    Bandwidth,
    DirectNetwork,
    NetworkMapError,
    OvsNetwork,
    Portgroup,
    QbgShared,
    Rate,
    find_portgroup,
    load_network_map,
    parse_bandwidth,
)

GOOD = """\
[networks.blue]
switch = "ovs"
bridge = "br-int"
vlan = 100
default_portgroup = "engineering"
override = true
bandwidth = {inbound = {average = 1000, peak = 2000, burst = 512}, outbound = {average = 5}}

[networks.blue.portgroups.engineering]
vlan = 200
override = true

[networks.blue.portgroups.sales]
trunk = [10, 20]
[networks.blue.portgroups.sales.bandwidth.outbound]
average = 500

[networks.green]
switch = "direct"
interface = "eth2"
trust_guest_rx_filters = true
default_portgroup = "vdp"
[networks.green.qbg]
manager_id = 11
type_id = 1193047
type_id_version = 2
[networks.green.portgroups.vdp]
manager_id = 12
type_id = 7
type_id_version = 1
trust_guest_rx_filters = false

[networks.red]
switch = "legacy"
default_portgroup = "slow"
[networks.red.portgroups.slow]
bandwidth = {inbound = {average = 10}}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "networks.toml"
    path.write_text(text)
    return path


def test_portgroups_load(tmp_path: Path) -> None:
    networks = load_network_map(write(tmp_path, GOOD)).networks
    blue = networks["blue"]
    assert isinstance(blue, OvsNetwork)
    assert blue.portgroups == (
        Portgroup("engineering", vlan=200, override=True),
        Portgroup("sales", trunk=(10, 20), bandwidth=Bandwidth(outbound=Rate(500))))
    assert blue.default_portgroup == "engineering"
    assert blue.override is True
    assert blue.bandwidth == Bandwidth(Rate(1000, 2000, 512), Rate(5))
    assert find_portgroup(blue, "sales") == blue.portgroups[1]
    assert find_portgroup(blue, "nope") is None
    green = networks["green"]
    assert isinstance(green, DirectNetwork)
    assert green.trust_guest_rx_filters is True
    assert green.portgroups == (Portgroup("vdp", qbg=QbgShared(12, 7, 1),
                                          trust_guest_rx_filters=False),)
    red = networks["red"]
    assert red.portgroups == (Portgroup("slow", bandwidth=Bandwidth(inbound=Rate(10))),)
    assert red.override is False
    assert red.bandwidth is None


def test_a_map_without_the_new_keys_is_as_before(tmp_path: Path) -> None:
    blue = load_network_map(write(tmp_path, '[networks.b]\nswitch = "ovs"\nbridge = "br"\n')
                            ).networks["b"]
    assert (blue.portgroups, blue.default_portgroup, blue.bandwidth, blue.override) == (
        (), None, None, False)


@pytest.mark.parametrize(("text", "expected"), [
    ("inbound=1000/2000/512 outbound=5", Bandwidth(Rate(1000, 2000, 512), Rate(5))),
    ("inbound=1//3", Bandwidth(Rate(1, None, 3))),
    ("outbound=7/8", Bandwidth(None, Rate(7, 8))),
    ("", None), ("inbound=", None), ("inbound=x", None), ("sideways=1", None),
    ("inbound=1 inbound=2", None), ("inbound=0", None), ("inbound=1/2/3/4", None),
    (f"inbound={2**32}", None), ("inbound=/1", None),
])
def test_bandwidth_text_round_trip(text: str, expected: Bandwidth | None) -> None:
    assert parse_bandwidth(text) == expected
    if expected is not None:
        assert parse_bandwidth(expected.text()) == expected


OVS = '[networks.blue]\nswitch = "ovs"\nbridge = "br-int"\n'
LEGACY = '[networks.red]\nswitch = "legacy"\n'
OVN = '[networks.o]\nswitch = "ovn"\n'
DIRECT = '[networks.g]\nswitch = "direct"\ninterface = "eth2"\n'

BAD = [
    # (file text, the exact message after "path")
    (OVS + '[networks.blue.portgroups.a]\nvlan = 5\n',
     ":1: networks.blue.default_portgroup: required: a network with portgroups names its "
     "default (a)"),
    (OVS + 'default_portgroup = "b"\n[networks.blue.portgroups.a]\nvlan = 5\n',
     ":4: networks.blue.default_portgroup: names no portgroup of network 'blue' (got 'b'; its "
     "portgroups: a)"),
    (OVS + 'default_portgroup = "b"\n',
     ":4: networks.blue.default_portgroup: names no portgroup of network 'blue' (got 'b'; it "
     "has none)"),
    (OVS + 'default_portgroup = 3\n',
     ":4: networks.blue.default_portgroup: must be a string (got 3)"),
    (OVS + 'portgroups = 3\n',
     ":4: networks.blue.portgroups: must be a table of portgroups "
     "([networks.NAME.portgroups.GROUP])"),
    (OVS + 'default_portgroup = "a"\n[networks.blue.portgroups]\na = 3\n',
     ":6: networks.blue.portgroups.a: must be a table ([networks.NAME.portgroups.GROUP])"),
    (OVS + 'default_portgroup = "a b"\n[networks.blue.portgroups."a b"]\n',
     ":5: networks.blue.portgroups.a b: portgroup name must be 1 to 64 characters of letters, "
     "digits, '_', '.' and '-'"),
    (LEGACY + 'default_portgroup = "a"\n[networks.red.portgroups.a]\nvlan = 5\n',
     ":5: networks.red.portgroups.a.vlan: not for a portgroup of switch 'legacy': a Linux bridge "
     "is VLAN-unaware (one legacy network per VLAN, tagged on its uplink)"),
    (LEGACY + 'default_portgroup = "a"\n[networks.red.portgroups.a]\ntrunk = [5]\n',
     ":5: networks.red.portgroups.a.trunk: not for a portgroup of switch 'legacy': a Linux bridge "
     "is VLAN-unaware (one legacy network per VLAN, tagged on its uplink)"),
    (OVN + 'default_portgroup = "a"\n[networks.o.portgroups.a]\nvlan = 5\n',
     ":5: networks.o.portgroups.a.vlan: not for a portgroup of switch 'ovn': OVN carries the "
     "network: no local VLAN"),
    (DIRECT + 'default_portgroup = "a"\n[networks.g.portgroups.a]\nvlan = 5\n',
     ":6: networks.g.portgroups.a.vlan: not for a portgroup of switch 'direct': only an ovs "
     "network's portgroups give a VLAN"),
    (OVS + 'default_portgroup = "a"\n[networks.blue.portgroups.a]\nprofile_id = "p"\n',
     ":6: networks.blue.portgroups.a.profile_id: not for a portgroup of switch 'ovs': "
     "802.1Qbg/802.1Qbh port profiles are for direct (macvtap) networks only"),
    (OVS + 'default_portgroup = "a"\n[networks.blue.portgroups.a]\nmanager_id = 1\n',
     ":6: networks.blue.portgroups.a.manager_id: not for a portgroup of switch 'ovs': "
     "802.1Qbg/802.1Qbh port profiles are for direct (macvtap) networks only"),
    (OVS + 'default_portgroup = "a"\n[networks.blue.portgroups.a]\n'
     'trust_guest_rx_filters = true\n',
     ":6: networks.blue.portgroups.a.trust_guest_rx_filters: not for a portgroup of "
     "switch 'ovs': only for direct (macvtap) networks"),
    (OVS + 'trust_guest_rx_filters = true\n',
     ":4: networks.blue.trust_guest_rx_filters: unknown key for switch 'ovs' (known: bandwidth, "
     "bond, bridge, default_portgroup, mtu, nic, override, portgroups, switch, trunk, vlan)"),
    (OVS + 'default_portgroup = "a"\n[networks.blue.portgroups.a]\ncolour = "red"\n',
     ":6: networks.blue.portgroups.a.colour: unknown key for a portgroup of switch 'ovs' "
     "(known: bandwidth, override, trunk, vlan)"),
    (OVS + 'default_portgroup = "a"\n[networks.blue.portgroups.a]\nvlan = 4095\n',
     ":6: networks.blue.portgroups.a.vlan: must be between 1 and 4094 (got 4095)"),
    (OVS + 'default_portgroup = "a"\n[networks.blue.portgroups.a]\nvlan = 5\ntrunk = [6]\n',
     ":7: networks.blue.portgroups.a.trunk: cannot be combined with 'vlan' (give one)"),
    (OVS + 'default_portgroup = "a"\n[networks.blue.portgroups.a]\ntrunk = [6, 6]\n',
     ":6: networks.blue.portgroups.a.trunk: must not repeat a VLAN"),
    (OVS + 'default_portgroup = "a"\n[networks.blue.portgroups.a]\ntrunk = []\n',
     ":6: networks.blue.portgroups.a.trunk: must be a non-empty list of VLANs (got [])"),
    (DIRECT + 'default_portgroup = "a"\n[networks.g.portgroups.a]\nmanager_id = 1\n'
     'type_id = 2\n',
     ":6: networks.g.portgroups.a.manager_id: 802.1Qbg needs all three of manager_id, type_id, "
     "type_id_version (missing: type_id_version)"),
    (DIRECT + 'default_portgroup = "a"\n[networks.g.portgroups.a]\nmanager_id = 256\n'
     'type_id = 2\ntype_id_version = 3\n',
     ":6: networks.g.portgroups.a.manager_id: must be between 0 and 255 (got 256)"),
    (DIRECT + 'default_portgroup = "a"\n[networks.g.portgroups.a]\nmanager_id = 1\n'
     'type_id = 2\ntype_id_version = 3\nprofile_id = "p"\n',
     ":9: networks.g.portgroups.a.profile_id: give 802.1Qbg's manager_id, type_id, "
     "type_id_version or 802.1Qbh's profile_id, not both"),
    (DIRECT + 'default_portgroup = "a"\n[networks.g.portgroups.a]\nprofile_id = "<evil>"\n',
     ":6: networks.g.portgroups.a.profile_id: must be 1 to 39 printable ASCII characters "
     "without < > & ' \" (an 802.1Qbh port profile) (got '<evil>')"),
    (DIRECT + 'default_portgroup = "a"\n[networks.g.portgroups.a]\nprofile_id = 7\n',
     ":6: networks.g.portgroups.a.profile_id: must be a string (got 7)"),
    (DIRECT + 'default_portgroup = "a"\n[networks.g.qbg]\nmanager_id = 1\ntype_id = 2\n'
     'type_id_version = 3\n[networks.g.portgroups.a]\nprofile_id = "p"\n',
     ":10: networks.g.portgroups.a.profile_id: the network gives 802.1Qbg parameters ([qbg]): "
     "its portgroups cannot switch to an 802.1Qbh profile"),
    (DIRECT + 'default_portgroup = "a"\n[networks.g.qbh]\nprofile_id = "p"\n'
     '[networks.g.portgroups.a]\nmanager_id = 1\ntype_id = 2\ntype_id_version = 3\n',
     ":8: networks.g.portgroups.a.manager_id: the network gives an 802.1Qbh profile ([qbh]): "
     "its portgroups cannot switch to 802.1Qbg"),
    (DIRECT + 'trust_guest_rx_filters = "yes"\n',
     ":4: networks.g.trust_guest_rx_filters: must be true or false (got 'yes')"),
    (OVS + 'override = 1\n', ":4: networks.blue.override: must be true or false (got 1)"),
    (OVS + 'default_portgroup = "a"\n[networks.blue.portgroups.a]\noverride = "yes"\n',
     ":6: networks.blue.portgroups.a.override: must be true or false (got 'yes')"),
    (OVS + 'bandwidth = 5\n',
     ":4: networks.blue.bandwidth: must be a table: {inbound = {average = ...}, outbound = ...}"),
    (OVS + 'bandwidth = {}\n',
     ":4: networks.blue.bandwidth: must give 'inbound' or 'outbound' (or both)"),
    (OVS + 'bandwidth = {sideways = {average = 1}}\n',
     ":4: networks.blue.bandwidth.sideways: unknown key (known: inbound, outbound)"),
    (OVS + 'bandwidth = {inbound = 5}\n',
     ":4: networks.blue.bandwidth.inbound: must be a table: {average = ..., peak = ..., "
     "burst = ...}"),
    (OVS + '[networks.blue.bandwidth.inbound]\npeak = 5\n',
     ":4: networks.blue.bandwidth.inbound.average: required"),
    (OVS + '[networks.blue.bandwidth.inbound]\naverage = 0\n',
     ":5: networks.blue.bandwidth.inbound.average: must be between 1 and 4294967295 (got 0)"),
    (OVS + '[networks.blue.bandwidth.outbound]\naverage = 1\nburst = 4294967296\n',
     ":6: networks.blue.bandwidth.outbound.burst: must be between 1 and 4294967295 "
     "(got 4294967296)"),
    (OVS + '[networks.blue.bandwidth.outbound]\naverage = 1\nfloor = 3\n',
     ":6: networks.blue.bandwidth.outbound.floor: unknown key (known: average, burst, peak)"),
    (OVS + 'default_portgroup = "a"\n[networks.blue.portgroups.a.bandwidth.inbound]\n'
     'average = true\n',
     ":6: networks.blue.portgroups.a.bandwidth.inbound.average: must be an integer "
     "(got True)"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_portgroups_name_file_line_and_key(text: str, message: str,
                                               tmp_path: Path) -> None:
    path = write(tmp_path, text)
    with pytest.raises(NetworkMapError) as caught:
        load_network_map(path)
    assert str(caught.value) == f"{path}{message}"


def test_the_cli_exits_2_with_the_line(tmp_path: Path) -> None:
    import io

    from vifplug.cli import main

    path = write(tmp_path, BAD[0][0])
    err = io.StringIO()
    out = io.StringIO()
    assert main(["host", "libvirt-networks", "--networks", str(path)], out, err) == 2
    assert out.getvalue() == ""
    assert f"{path}{BAD[0][1]}" in err.getvalue()


def test_describe_names_the_host_settings(tmp_path: Path) -> None:
    networks = load_network_map(write(tmp_path, GOOD)).networks
    assert networks["blue"].describe() == (
        "OVS bridge br-int, vlan 100, bandwidth inbound=1000/2000/512 outbound=5, override, "
        "portgroups engineering (default), sales")
    assert networks["green"].describe() == (
        "macvtap on eth2 (vepa) with 802.1Qbg, trustGuestRxFilters yes, portgroups vdp (default)")
    assert networks["red"].describe() == "Linux bridge red, portgroups slow (default)"


UPLINKED = """\
[networks.red]
switch = "ovs"
nic = "eth1"
default_portgroup = "a"
[networks.red.portgroups.a]
vlan = 4094
[networks.red.portgroups.b]
trunk = [8, 9]

[networks.blue]
switch = "ovs"
nic = "eth1"
vlan = 10
"""


def test_portgroup_vlans_ride_the_uplink(tmp_path: Path) -> None:
    """An ovs network's portgroup VLANs are carried by its uplink like its own, and the native
    VLAN of its untagged guests avoids them."""
    from vifplug.netlayout import ovs_bridges

    host_map = load_network_map(write(tmp_path, UPLINKED))
    (bridge,) = ovs_bridges(host_map)
    assert bridge.trunks == (8, 9, 10, 4094)
    assert bridge.native_vlan == 4093
    assert host_map.networks["red"].access_tag == 4093


def test_portgroup_vlans_collide_with_other_networks_on_the_uplink(tmp_path: Path) -> None:
    path = write(tmp_path, UPLINKED.replace("vlan = 10", "vlan = 9"))
    with pytest.raises(NetworkMapError) as caught:
        load_network_map(path)
    assert str(caught.value) == (
        f"{path}:8: networks.red.portgroups.b.trunk: network blue is VLAN 9 on uplink eth1 "
        "already: networks sharing an uplink need different VLANs (one of them untagged at most)")
