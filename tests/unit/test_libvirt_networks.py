"""libvirt networks from the map (``vifplug host libvirt-networks``) and guests that name them
(``vifplug render --as-network``), checked by libvirt itself: network.rng and domain.rng, and
defined and started on libvirt's test:///default driver."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import EXAMPLES, DomainChecker, unavailable
from lxml import etree

from vifplug import GenericVIFDriver, load_vifs
from vifplug.cli import main
from vifplug.errors import VifError
from vifplug.libvirt_networks import (
    AS_NETWORK_KINDS,
    as_network,
    define_networks,
    network_element,
    network_elements,
)
from vifplug.netmap import load_network_map

NETWORK_RNG = Path("/usr/share/libvirt/schemas/network.rng")

MAP = """\
[networks.red]
switch = "legacy"
bridge = "red"

[networks.jumbo]
switch = "legacy"
bridge = "br-jumbo"
nic = "eth3"
mtu = 9000

[networks.blue]
switch = "ovs"
bridge = "br-int"
vlan = 100

[networks.trunked]
switch = "ovs"
bridge = "br-trunk"
trunk = [10, 20]

[networks.purple]
switch = "ovn"

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
interface = "eth4"
mode = "passthrough"
[networks.finance.qbh]
profile_id = "finance"
"""

#: What each network above must say, as (tag, attributes) pairs in document order.
EXPECTED: dict[str, list[tuple[str, dict[str, str]]]] = {
    "red": [("forward", {"mode": "bridge"}), ("bridge", {"name": "red"})],
    "jumbo": [("forward", {"mode": "bridge"}), ("bridge", {"name": "br-jumbo"}),
              ("mtu", {"size": "9000"})],
    "blue": [("forward", {"mode": "bridge"}), ("bridge", {"name": "br-int"}),
             ("virtualport", {"type": "openvswitch"}), ("vlan", {}), ("tag", {"id": "100"})],
    "trunked": [("forward", {"mode": "bridge"}), ("bridge", {"name": "br-trunk"}),
                ("virtualport", {"type": "openvswitch"}), ("vlan", {"trunk": "yes"}),
                ("tag", {"id": "10"}), ("tag", {"id": "20"})],
    "purple": [("forward", {"mode": "bridge"}), ("bridge", {"name": "br-int"}),
               ("virtualport", {"type": "openvswitch"})],
    "green": [("forward", {"mode": "vepa"}), ("interface", {"dev": "eth2"}),
              ("virtualport", {"type": "802.1Qbg"}),
              ("parameters", {"managerid": "11", "typeid": "1193047", "typeidversion": "2"})],
    "finance": [("forward", {"mode": "passthrough"}), ("interface", {"dev": "eth4"}),
                ("virtualport", {"type": "802.1Qbh"}), ("parameters", {"profileid": "finance"})],
}


@pytest.fixture(scope="module")
def network_rng() -> etree.RelaxNG:
    if not NETWORK_RNG.exists():
        unavailable(f"{NETWORK_RNG} is missing (apt-get install libvirt-daemon)")
    return etree.RelaxNG(file=str(NETWORK_RNG))


@pytest.fixture
def host_map(tmp_path: Path) -> Any:
    path = tmp_path / "networks.toml"
    path.write_text(MAP)
    return load_network_map(path)


def _shape(element: etree._Element) -> list[tuple[str, dict[str, str]]]:
    return [(child.tag, dict(child.attrib)) for child in element.iter() if child is not element
            and child.tag != "name"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_network_says_what_the_map_says_and_libvirt_accepts_it(
        name: str, host_map: Any, network_rng: etree.RelaxNG) -> None:
    element = network_element(host_map.networks[name])
    assert element.findtext("name") == name
    assert _shape(element) == EXPECTED[name]
    assert network_rng.validate(element), network_rng.error_log


def test_every_network_of_the_map_in_name_order(host_map: Any) -> None:
    assert [e.findtext("name") for e in network_elements(host_map)] == sorted(EXPECTED)


def test_an_untagged_network_on_an_uplinked_bridge_gets_its_native_vlan(tmp_path: Path) -> None:
    path = tmp_path / "networks.toml"
    path.write_text('[networks.plain]\nswitch = "ovs"\nnic = "eth1"\n'
                    '[networks.tagged]\nswitch = "ovs"\nnic = "eth1"\nvlan = 7\n')
    plain = load_network_map(path).networks["plain"]
    element = network_element(plain)
    assert element.find("bridge").get("name") == "br-eth1"
    assert element.find("vlan/tag").get("id") == str(plain.access_tag)


def test_the_networks_are_defined_and_started_on_libvirt(
        host_map: Any, test_conn: Any) -> None:
    import libvirt

    names = ["red", "blue", "green"]
    documents = [etree.tostring(network_element(host_map.networks[n]), encoding="unicode")
                 for n in names]
    try:
        assert define_networks("test:///default", documents) == [
            (n, "defined, autostart on, started") for n in names]
        assert define_networks("test:///default", documents) == [
            (n, "unchanged, running") for n in names]
        # (a changed definition of a running network: the integration test, on a real
        # libvirtd; the test driver keeps no separate persistent definition)
        for n in names:
            assert test_conn.networkLookupByName(n).isActive()
    finally:
        for n in names:
            try:
                net = test_conn.networkLookupByName(n)
            except libvirt.libvirtError:
                continue
            if net.isActive():
                net.destroy()
            net.undefine()


# --- guests that name the networks -------------------------------------------------------------

AS_NETWORK = {  # example -> what the <interface type='network'> keeps of its virtualport
    "bridge.json": None,
    "bridge-firewalled.json": None,
    "ovs-virtualport.json": {"interfaceid": "0f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f"},
    "ovs-trunk.json": "interfaceid",
    "direct.json": None,
    "802.1qbg.json": "instanceid",
    "802.1qbh.json": None,
}


#: The map network (of MAP) each connection's guests are started on.
HOST_NETWORK = {"bridge": "red", "ovs-virtualport": "blue", "direct": "green",
                "802.1qbg": "green", "802.1qbh": "finance"}


def _vif(example: str) -> Any:
    (vif,) = load_vifs(json.loads((EXAMPLES / example).read_text()))
    return vif


@pytest.mark.parametrize("example", sorted(AS_NETWORK))
def test_as_network_keeps_the_guest_parts_and_starts_on_the_network(
        example: str, host_map: Any, libvirt_check: DomainChecker, test_conn: Any) -> None:
    driver = GenericVIFDriver()
    vif = _vif(example)
    connection = driver.select(vif).name
    rendered = driver.interface_xml(vif)
    element = as_network(rendered, network=vif.network.name, connection=connection)
    assert element.get("type") == "network"
    assert element.find("source").attrib == {"network": vif.network.name}
    assert element.find("vlan") is None
    assert element.find("mac").get("address") == vif.mac
    kept = [c.tag for c in element if c.tag not in ("source", "virtualport")]
    assert kept == [c.tag for c in rendered if c.tag not in ("source", "virtualport", "vlan")]
    port = element.find("virtualport")
    expected = AS_NETWORK[example]
    if expected is None:
        assert port is None or port.find("parameters").get("interfaceid") is None
    else:
        assert port.get("type") is None
        keys = {expected} if isinstance(expected, str) else set(expected)
        assert set(port.find("parameters").attrib) == keys
        if isinstance(expected, dict):
            assert dict(port.find("parameters").attrib) == expected
    # libvirt: valid, and it starts on a network of that name, of the kind the map would give
    network = network_element(host_map.networks[HOST_NETWORK[connection]]._replace(
        name=vif.network.name))
    net = test_conn.networkCreateXML(etree.tostring(network, encoding="unicode"))
    try:
        live = libvirt_check.check([element])
    finally:
        net.destroy()
    (iface,) = live.iterfind("devices/interface")
    assert iface.get("type") == "network"
    assert iface.find("source").get("network") == vif.network.name


@pytest.mark.parametrize("example", ["ovs-hybrid.json", "ovs-manual.json", "ethernet.json",
                                     "vhostuser.json", "hostdev.json"])
def test_connections_no_network_describes_are_refused_by_name(example: str) -> None:
    driver = GenericVIFDriver()
    vif = _vif(example)
    connection = driver.select(vif).name
    assert connection not in AS_NETWORK_KINDS
    with pytest.raises(VifError, match=rf"a VIF connected by {connection} cannot be"):
        as_network(driver.interface_xml(vif), network="x", connection=connection)
    err = io.StringIO()
    assert main(["render", "--as-network", str(EXAMPLES / example)], io.StringIO(), err) == 2
    assert f"connected by {connection}" in err.getvalue()


def test_cli_prints_the_networks_and_refuses_an_unknown_one(tmp_path: Path) -> None:
    path = tmp_path / "networks.toml"
    path.write_text(MAP)
    out = io.StringIO()
    assert main(["host", "libvirt-networks", "--networks", str(path), "--network", "blue"],
                out, io.StringIO()) == 0
    assert etree.fromstring(out.getvalue()).findtext("name") == "blue"
    err = io.StringIO()
    assert main(["host", "libvirt-networks", "--networks", str(path), "--network", "nope"],
                io.StringIO(), err) == 2
    assert "--network: 'nope' not in" in err.getvalue()


# --- portgroups ---------------------------------------------------------------------------------

PORTGROUP_MAP = """\
[networks.blue]
switch = "ovs"
bridge = "br-int"
vlan = 100
default_portgroup = "engineering"
bandwidth = {inbound = {average = 1000, peak = 2000, burst = 512}}
[networks.blue.portgroups.engineering]
vlan = 200
[networks.blue.portgroups.sales]
trunk = [10, 20]
bandwidth = {outbound = {average = 500}}
override = true

[networks.red]
switch = "legacy"
bridge = "red"
bandwidth = {outbound = {average = 300}}

[networks.green]
switch = "direct"
interface = "eth2"
trust_guest_rx_filters = false
default_portgroup = "vdp"
[networks.green.qbg]
manager_id = 11
type_id = 1193047
type_id_version = 2
[networks.green.portgroups.vdp]
manager_id = 12
type_id = 7
type_id_version = 1
trust_guest_rx_filters = true

[networks.finance]
switch = "direct"
interface = "eth4"
mode = "passthrough"
default_portgroup = "payroll"
[networks.finance.portgroups.payroll]
profile_id = "payroll"
[networks.finance.portgroups.audit]
profile_id = "audit"
bandwidth = {inbound = {average = 100}}
"""

PORTGROUPS_EXPECTED: dict[str, list[tuple[str, dict[str, str]]]] = {
    "blue": [
        ("portgroup", {"name": "engineering", "default": "yes"}),
        ("bandwidth", {}), ("inbound", {"average": "1000", "peak": "2000", "burst": "512"}),
        ("vlan", {}), ("tag", {"id": "200"}),
        ("portgroup", {"name": "sales"}),
        ("bandwidth", {}), ("outbound", {"average": "500"}),
        ("vlan", {"trunk": "yes"}), ("tag", {"id": "10"}), ("tag", {"id": "20"})],
    # no portgroups in the map: one made to hold the network-wide bandwidth
    "red": [("portgroup", {"name": "default", "default": "yes"}),
            ("bandwidth", {}), ("outbound", {"average": "300"})],
    "green": [("portgroup", {"name": "vdp", "default": "yes", "trustGuestRxFilters": "yes"}),
              ("virtualport", {"type": "802.1Qbg"}),
              ("parameters", {"managerid": "12", "typeid": "7", "typeidversion": "1"})],
    "finance": [("portgroup", {"name": "payroll", "default": "yes"}),
                ("virtualport", {"type": "802.1Qbh"}), ("parameters", {"profileid": "payroll"}),
                ("portgroup", {"name": "audit"}),
                ("virtualport", {"type": "802.1Qbh"}), ("parameters", {"profileid": "audit"}),
                ("bandwidth", {}), ("inbound", {"average": "100"})],
}


@pytest.fixture
def portgroup_map(tmp_path: Path) -> Any:
    path = tmp_path / "portgroups.toml"
    path.write_text(PORTGROUP_MAP)
    return load_network_map(path)


def _portgroups_shape(element: etree._Element) -> list[tuple[str, dict[str, str]]]:
    found = []
    for group in element.iterfind("portgroup"):
        found += [(e.tag, dict(e.attrib)) for e in group.iter()]
    return found


@pytest.mark.parametrize("name", sorted(PORTGROUPS_EXPECTED))
def test_portgroups_are_in_the_network_and_libvirt_accepts_them(
        name: str, portgroup_map: Any, network_rng: etree.RelaxNG, test_conn: Any) -> None:
    element = network_element(portgroup_map.networks[name])
    assert _portgroups_shape(element) == PORTGROUPS_EXPECTED[name]
    assert element.find("bandwidth") is None  # libvirt refuses it network-wide on these modes
    assert network_rng.validate(element), network_rng.error_log
    if name == "green":
        assert element.get("trustGuestRxFilters") == "no"
    net = test_conn.networkDefineXML(etree.tostring(element, encoding="unicode"))
    try:
        net.create()
        live = etree.fromstring(net.XMLDesc(0))  # libvirt's own element order
        assert sorted((tag, sorted(a.items())) for tag, a in _portgroups_shape(live)) == sorted(
            (tag, sorted(a.items())) for tag, a in PORTGROUPS_EXPECTED[name])
        assert [g.get("name") for g in live.iterfind("portgroup")] == [
            g.get("name") for g in element.iterfind("portgroup")]
    finally:
        if net.isActive():
            net.destroy()
        net.undefine()


@pytest.mark.parametrize("portgroup", ["sales", None])
def test_as_network_names_the_portgroup_and_starts_on_it(
        portgroup: str | None, portgroup_map: Any,
        libvirt_check: DomainChecker, test_conn: Any, tmp_path: Path) -> None:
    data = json.loads((EXAMPLES / "ovs-virtualport.json").read_text())
    data["network"] = {"name": "blue", "bridge": "br-int"}
    if portgroup is not None:
        data["network"]["portgroup"] = portgroup
    (vif,) = load_vifs(data)
    driver = GenericVIFDriver()
    element = as_network(driver.interface_xml(vif), network="blue",
                         connection=driver.select(vif).name, portgroup=vif.network.portgroup)
    want = {"network": "blue", **({"portgroup": portgroup} if portgroup else {})}
    assert element.find("source").attrib == want
    path = tmp_path / "vif.json"
    path.write_text(json.dumps(data))
    out = io.StringIO()
    assert main(["render", "--as-network", str(path)], out, io.StringIO()) == 0
    assert etree.fromstring(out.getvalue()).find("source").attrib == want
    network = network_element(portgroup_map.networks["blue"])
    net = test_conn.networkCreateXML(etree.tostring(network, encoding="unicode"))
    try:
        live = libvirt_check.check([element])
    finally:
        net.destroy()
    (iface,) = live.iterfind("devices/interface")
    assert iface.find("source").attrib == want
