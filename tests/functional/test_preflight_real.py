"""``vifplug hook check`` on a real namespace and a real private OVS: it runs itself in the
namespace (``--netns``: ``ip netns exec`` gives it that namespace's /sys) and reads the real
OVSDB over its socket (``--ovsdb``). Each problem the issue names is made on purpose — the
Linux bridge missing, the OVS bridge missing, the NIC missing, the MTU too small — and then
fixed, and the same domain is ready."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from lxml import etree

from tests.fixtures import Netns, PrivateOvs
from vifplug import GenericVIFDriver, load_vifs
from vifplug.cli import main

pytestmark = pytest.mark.root

VIFS = [
    {"id": "0f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f", "vif_type": "bridge", "mtu": 1500,
     "mac": "fa:16:3e:00:00:11", "network": {"name": "red", "bridge": "red"}},
    {"id": "1f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f", "vif_type": "ovs", "mtu": 1500,
     "mac": "fa:16:3e:00:00:12", "network": {"name": "blue", "bridge": "br-int"},
     "ovs": {"interface_id": "1f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e50"}},
    {"id": "2f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f", "vif_type": "direct",
     "mac": "fa:16:3e:00:00:13", "network": {"name": "green", "interface": "eth2"},
     "direct": {"mode": "bridge"}},
]
MAP = """\
[networks.red]
switch = "legacy"
bridge = "vpchkred"

[networks.blue]
switch = "ovs"
bridge = "vpchkovs"

[networks.green]
switch = "direct"
interface = "vpchknic"
mode = "bridge"
"""


def check(netns: Netns, ovs: PrivateOvs, tmp_path: Path) -> tuple[int, list[str]]:
    driver = GenericVIFDriver()
    vifs = [load_vifs(v)[0] for v in VIFS]
    root = etree.Element("domain", type="kvm")
    etree.SubElement(root, "name").text = "g"
    etree.SubElement(root, "metadata").append(driver.metadata_xml(vifs))
    etree.SubElement(root, "devices").extend(driver.interface_xml(v) for v in vifs)
    domain = tmp_path / "domain.xml"
    domain.write_bytes(etree.tostring(root))
    networks = tmp_path / "networks.toml"
    networks.write_text(MAP)
    out = io.StringIO()
    code = main(["hook", "check", str(domain), "--networks", str(networks), "--netns",
                 netns.name, "--ovsdb", ovs.db], out, io.StringIO())
    return code, [line.removeprefix(f"{domain}: ") for line in out.getvalue().splitlines()]


def test_hook_check_finds_each_problem_then_says_ready(
        netns: Netns, ovs: PrivateOvs, scratch: list[str], tmp_path: Path) -> None:
    code, lines = check(netns, ovs, tmp_path)
    assert code == 1
    assert lines == [
        "interface fa:16:3e:00:00:11: network 'red': Linux bridge vpchkred does not exist on "
        "this host",
        "interface fa:16:3e:00:00:12: network 'blue': OVS bridge vpchkovs does not exist on "
        "this host (no Bridge row in OVSDB)",
        "interface fa:16:3e:00:00:13: network 'green': NIC vpchknic does not exist on this host",
    ]

    netns.add_bridge("vpchkred", mtu=1400)
    scratch.append("vpchkred")
    ovs.add_bridge("vpchkovs")
    try:
        netns.add_veth("vpchknic", "vpchkpeer")
        scratch.append("vpchknic")
        code, lines = check(netns, ovs, tmp_path)
        assert code == 1
        assert lines == ["interface fa:16:3e:00:00:11: network 'red': the guest's MTU 1500 is "
                         "larger than vpchkred's MTU, 1400"]

        netns.ip("link", "set", "dev", "vpchkred", "mtu", "1500")
        code, lines = check(netns, ovs, tmp_path)
        assert code == 0
        assert lines[0].startswith("ready: 3 vifplug interface(s) on network(s) blue, green, "
                                   "red can be connected on this host")
    finally:
        ovs.vsctl("--if-exists", "del-br", "vpchkovs")
