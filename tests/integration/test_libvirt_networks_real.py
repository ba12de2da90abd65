"""libvirt networks from the map on a real libvirtd, and a real QEMU guest connected by them.

On the session's private libvirtd (its netns and OVS with br-int): a map with a Linux bridge
network, an OVS network with access VLAN 100 and a macvtap network on a veth end. ``vifplug host
libvirt-networks --define`` defines and starts a libvirt network for each; a diskless QEMU guest
with one ``vifplug render --as-network`` interface per network starts, and each NIC lands where
the map says: the TAP in Linux bridge ``red``; a TAP on br-int tagged 100 with the guest's
interfaceid as iface-id; a macvtap whose lower device is the veth end, in the map's mode. Then
the map changes a VLAN: ``--define`` again redefines that network and says the running one keeps
its old definition until restarted; the others are unchanged.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from tests.fixtures.libvirtd import PrivateLibvirtd, minimal_domain
from tests.fixtures.netns import Netns
from tests.fixtures.ovs import PrivateOvs
from vifplug import GenericVIFDriver, load_vifs
from vifplug.cli import main
from vifplug.libvirt_networks import as_network

pytestmark = [pytest.mark.root,
              pytest.mark.filterwarnings("ignore:\\s*Eventlet is deprecated")]

NAMES = ("vp-lvn-red", "vp-lvn-blue", "vp-lvn-green")


def _map(lower: str, vlan: int) -> str:
    return f"""\
[networks.vp-lvn-red]
switch = "legacy"
bridge = "vplvnred"

[networks.vp-lvn-blue]
switch = "ovs"
bridge = "br-int"
vlan = {vlan}

[networks.vp-lvn-green]
switch = "direct"
interface = "{lower}"
mode = "bridge"
"""


def _vif(vif_type: str, name: str, **extra: Any) -> Any:
    tail = uuid.uuid4().hex
    (vif,) = load_vifs({"id": str(uuid.uuid4()), "vif_type": vif_type,
                        "mac": "fa:16:3e:" + ":".join(tail[i:i + 2] for i in (0, 2, 4)),
                        "network": {"name": name, **extra.pop("network", {})}, **extra})
    return vif


@pytest.fixture
def networks_cleanup(conn: Any) -> Iterator[None]:
    import libvirt

    yield
    for name in NAMES:
        try:
            net = conn.networkLookupByName(name)
        except libvirt.libvirtError:
            continue
        if net.isActive():
            net.destroy()
        net.undefine()


def _define(path: Path, libvirtd: PrivateLibvirtd) -> dict[str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["host", "libvirt-networks", "--networks", str(path), "--define",
                 libvirtd.uri], out, err)
    assert code == 0, err.getvalue()
    return dict(line.split(": ", 1) for line in out.getvalue().splitlines())


def test_guest_connected_by_libvirt_networks_lands_where_the_map_says(
        libvirtd: PrivateLibvirtd, conn: Any, netns: Netns, *, ovs: PrivateOvs, br_int: str,
        scratch: list[str], networks_cleanup: None, tmp_path: Path) -> None:
    netns.add_bridge("vplvnred")
    scratch.append("vplvnred")
    netns.add_veth("vplvn-low", "vplvn-peer")
    scratch.append("vplvn-low")
    path = tmp_path / "networks.toml"
    path.write_text(_map("vplvn-low", 100))

    assert _define(path, libvirtd) == dict.fromkeys(sorted(NAMES),
                                                    "defined, autostart on, started")
    for name in NAMES:
        assert conn.networkLookupByName(name).isActive()

    red = _vif("bridge", "vp-lvn-red", network={"bridge": "vplvnred"})
    blue = _vif("ovs", "vp-lvn-blue", network={"bridge": br_int},
                ovs={"interface_id": str(uuid.uuid4())})
    green = _vif("direct", "vp-lvn-green", network={"interface": "vplvn-low"},
                 direct={"mode": "bridge"})
    driver = GenericVIFDriver()
    interfaces = [as_network(driver.interface_xml(vif), network=vif.network.name,
                             connection=driver.select(vif).name) for vif in (red, blue, green)]
    dom = conn.createXML(minimal_domain("vp-lvn-guest", interfaces), 0)
    try:
        live = {iface.find("mac").get("address"): iface
                for iface in etree.fromstring(dom.XMLDesc()).iterfind("devices/interface")}
        # the Linux bridge network: the TAP in bridge red
        tap = live[red.mac].find("target").get("dev")
        assert netns.link(tap)["master"] == "vplvnred"
        # the OVS network: a TAP on br-int, access VLAN 100, the guest's interfaceid
        tap = live[blue.mac].find("target").get("dev")
        assert tap in ovs.ports(br_int)
        assert ovs.get("Port", tap, "tag") == "100"
        assert ovs.get("Interface", tap, "external_ids:iface-id").strip('"') \
            == blue.ovs.interface_id
        # the macvtap network: a macvtap on the veth end, in the map's mode
        tap = live[green.mac].find("target").get("dev")
        macvtap = netns.link(tap)
        assert macvtap["linkinfo"]["info_kind"] == "macvtap"
        assert macvtap["link"] == "vplvn-low"
        assert macvtap["linkinfo"]["info_data"]["mode"] == "bridge"
    finally:
        dom.destroy()

    # the map changes blue's VLAN: redefined; the running network keeps its old definition
    path.write_text(_map("vplvn-low", 200))
    again = _define(path, libvirtd)
    assert again["vp-lvn-red"] == again["vp-lvn-green"] == "unchanged, running"
    assert again["vp-lvn-blue"].startswith("redefined, running on its previous definition")
    import libvirt

    blue_net = conn.networkLookupByName("vp-lvn-blue")
    assert etree.fromstring(blue_net.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE)) \
        .find("vlan/tag").get("id") == "200"
    assert etree.fromstring(blue_net.XMLDesc(0)).find("vlan/tag").get("id") == "100"


def test_a_priority_list_defines_its_first_option(libvirtd: PrivateLibvirtd, conn: Any,
                                                  netns: Netns, scratch: list[str],
                                                  tmp_path: Path) -> None:
    """libvirt has no priority list: the network is defined as its first option (a passthrough
    pool of a veth end here), the comment naming the others is the document's only, and defining it
    again changes nothing."""
    import libvirt

    netns.add_veth("vplvn-opt", "vplvn-optp")
    scratch.append("vplvn-opt")
    path = tmp_path / "networks.toml"
    path.write_text('[[networks.vp-lvn-opt.options]]\nswitch = "direct"\n'
                    'interfaces = ["vplvn-opt"]\nmode = "passthrough"\n'
                    '[[networks.vp-lvn-opt.options]]\nswitch = "legacy"\nbridge = "vplvnopt"\n')
    try:
        assert _define(path, libvirtd) == {"vp-lvn-opt": "defined, autostart on, started"}
        defined = etree.fromstring(conn.networkLookupByName("vp-lvn-opt").XMLDesc(
            libvirt.VIR_NETWORK_XML_INACTIVE))
        assert defined.find("forward").get("mode") == "passthrough"
        assert [i.get("dev") for i in defined.iterfind("forward/interface")] == ["vplvn-opt"]
        assert defined.find("bridge") is None
        assert _define(path, libvirtd) == {"vp-lvn-opt": "unchanged, running"}
    finally:
        try:
            net = conn.networkLookupByName("vp-lvn-opt")
        except libvirt.libvirtError:
            net = None
        if net is not None:
            if net.isActive():
                net.destroy()
            net.undefine()
