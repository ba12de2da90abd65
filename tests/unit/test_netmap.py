"""networks.toml: every rule, and errors that name the file and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from vifplug.netmap import (
    DirectNetwork,
    LegacyNetwork,
    NetworkMapError,
    OvnNetwork,
    OvsNetwork,
    QbgShared,
    load_network_map,
    map_path,
)

GOOD = """\
[networks.red]          # legacy Linux bridge; bridge defaults to the network name
switch = "legacy"

[networks.blue]
switch = "ovs"
bridge = "br-int"
vlan = 100

[networks.trunked]
switch = "ovs"
bridge = "br-int"
trunk = [10, 20]

[networks.overlay]
switch = "ovn"
logical_switch = "ls-overlay"

[networks.tenant]
switch = "ovn"
bridge = "br-ovn"

[networks.green]
switch = "direct"
interface = "eth2"
mode = "vepa"
[networks.green.qbg]
manager_id = 11
type_id = 1193047
type_id_version = 2

[networks.finance]
switch = "direct"
interface = "eth3"
mode = "passthrough"
[networks.finance.qbh]
profile_id = "finance"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "networks.toml"
    path.write_text(text)
    return path


def test_the_contracts_example(tmp_path: Path) -> None:
    host_map = load_network_map(write(tmp_path, GOOD))
    assert host_map.networks == {
        "red": LegacyNetwork("red", "red"),
        "blue": OvsNetwork("blue", "br-int", vlan=100),
        "trunked": OvsNetwork("trunked", "br-int", trunk=(10, 20)),
        "overlay": OvnNetwork("overlay", "ls-overlay", "br-int"),
        "tenant": OvnNetwork("tenant", "tenant", "br-ovn"),
        "green": DirectNetwork("green", "eth2", "vepa", qbg=QbgShared(11, 1193047, 2)),
        "finance": DirectNetwork("finance", "eth3", "passthrough", qbh_profile_id="finance"),
    }
    assert load_network_map(write(tmp_path, "")).networks == {}


BAD = [
    # (file text, expected "line: where: message" fragment)
    ('[networks.red]\nswitch = "lagacy"\n', ":2: networks.red.switch: must be one of"),
    ('[networks.red]\nswitch = "legacy"\nbrdige = "x"\n', ":3: networks.red.brdige: unknown key"),
    ('[networks.blue]\nswitch = "ovs"\n', ":1: networks.blue.bridge: required"),
    ('[networks.blue]\nswitch = "ovs"\nbridge = "br-int"\nvlan = 4095\n',
     ":4: networks.blue.vlan: must be between 1 and 4094 (got 4095)"),
    ('[networks.blue]\nswitch = "ovs"\nbridge = "br-int"\nvlan = true\n',
     ":4: networks.blue.vlan: must be an integer"),
    ('[networks.blue]\nswitch = "ovs"\nbridge = "br-int"\nvlan = 1\ntrunk = [2]\n',
     ":5: networks.blue.trunk: cannot be combined with 'vlan'"),
    ('[networks.blue]\nswitch = "ovs"\nbridge = "br-int"\ntrunk = []\n',
     ":4: networks.blue.trunk: must be a non-empty list"),
    ('[networks.blue]\nswitch = "ovs"\nbridge = "br-int"\ntrunk = [5, 5]\n',
     ":4: networks.blue.trunk: must not repeat"),
    ('[networks.blue]\nswitch = "ovs"\nbridge = "a-very-long-bridge-name"\n',
     ":3: networks.blue.bridge: must be a device name of at most 15 bytes"),
    ('[networks.blue]\nswitch = "ovs"\nbridge = "br int"\n',
     ":3: networks.blue.bridge: must be a device name of only letters"),
    ('[networks."bad name"]\nswitch = "legacy"\n', ":1: networks.bad name: network name must"),
    ('[networks.aaaaaaaaaaaaaaaaaaaaa]\nswitch = "legacy"\n',
     ":1: networks.aaaaaaaaaaaaaaaaaaaaa.bridge: must be a device name of at most 15"),
    ('[networks.green]\nswitch = "direct"\ninterface = "eth2"\nmode = "vpea"\n',
     ":4: networks.green.mode: must be one of vepa"),
    ('[networks.green]\nswitch = "direct"\n', ":1: networks.green.interface: required"),
    ('[networks.green]\nswitch = "direct"\ninterface = "eth2"\n[networks.green.qbg]\n'
     "manager_id = 256\ntype_id = 1\ntype_id_version = 1\n",
     ":5: networks.green.qbg.manager_id: must be between 0 and 255"),
    ('[networks.green]\nswitch = "direct"\ninterface = "eth2"\n[networks.green.qbg]\n'
     "manager_id = 1\ntype_id = 1\n", ":4: networks.green.qbg.type_id_version: required"),
    ('[networks.green]\nswitch = "direct"\ninterface = "eth2"\n[networks.green.qbg]\n'
     "manager_id = 1\ntype_id = 1\ntype_id_version = 1\ninstance_id = \"x\"\n",
     ":8: networks.green.qbg.instance_id: unknown key"),
    ('[networks.green]\nswitch = "direct"\ninterface = "eth2"\n[networks.green.qbg]\n'
     'manager_id = 1\ntype_id = 1\ntype_id_version = 1\n[networks.green.qbh]\nprofile_id = "p"\n',
     ":8: networks.green.qbh: a network gives at most one"),
    ('[networks.green]\nswitch = "direct"\ninterface = "eth2"\n[networks.green.qbh]\n'
     'profile_id = "<evil>"\n', ":5: networks.green.qbh.profile_id: must be 1 to 39"),
    ('[networks.green]\nswitch = "legacy"\ninterface = "eth2"\n',
     ":3: networks.green.interface: unknown key for switch 'legacy'"),
    ('[networks.o]\nswitch = "ovn"\nvlan = 100\n',
     ":3: networks.o.vlan: unknown key for switch 'ovn' (known: bandwidth, bridge, "
     "default_portgroup, logical_switch, override, portgroups, switch)"),
    ('[networks.o]\nswitch = "ovn"\nlogical_switch = 7\n',
     ":3: networks.o.logical_switch: must be a string (got 7)"),
    ('[networks.o]\nswitch = "ovn"\nlogical_switch = "blue; rm -rf /"\n',
     ":3: networks.o.logical_switch: must be 1-253 characters"),
    ('[networks.o]\nswitch = "ovn"\nlogical_switch = ""\n',
     ":3: networks.o.logical_switch: must be 1-253 characters"),
    ('[networks.o]\nswitch = "ovn"\nbridge = "br int"\n',
     ":3: networks.o.bridge: must be a device name of only letters"),
    ('[networks.o]\nswitch = "ovm"\n',
     ":2: networks.o.switch: must be one of 'legacy', 'ovs', 'ovn', 'direct' (got 'ovm')"),
    ("[vifplug]\nx = 1\n", ":1: vifplug: unknown key"),
    ("networks = 3\n", ": networks: must be a table"),
    ("[networks.red\n", ": not valid TOML"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_maps_name_file_and_line(text: str, message: str, tmp_path: Path) -> None:
    path = write(tmp_path, text)
    with pytest.raises(NetworkMapError) as caught:
        load_network_map(path)
    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value)


def test_not_utf8_and_missing(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[networks.r\xe9d]\nswitch = "legacy"\n')
    with pytest.raises(NetworkMapError, match="not UTF-8"):
        load_network_map(path)
    with pytest.raises(NetworkMapError, match="cannot read the network map"):
        load_network_map(tmp_path / "absent.toml")


def test_which_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("VIFPLUG_NETWORKS", raising=False)
    assert map_path() == "/etc/vifplug/networks.toml"
    monkeypatch.setenv("VIFPLUG_NETWORKS", str(tmp_path / "env.toml"))
    assert map_path() == str(tmp_path / "env.toml")
    assert map_path(tmp_path / "arg.toml") == str(tmp_path / "arg.toml")


def test_loading_stays_light() -> None:
    import subprocess
    import sys

    code = ("import sys, vifplug.hook, vifplug.netmap\n"
            "heavy = {'pydantic', 'pyroute2', 'lxml', 'ovsdbapp', 'libvirt', 'os_vif',\n"
            "         'dataclasses'} & set(sys.modules)\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True)
