"""Portgroups and the merge rule in the hook: the portgroup a guest names (else the network's
default), a portgroup the host lacks refused, what each layer supplies applied to the XML (and
accepted by libvirt), conflicts refused unless the host overrides, guests rendered before the
rule unchanged; and what ``vifplug hook rewrite --explain`` and ``vifplug explain --networks``
show."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import EXAMPLES, DomainChecker, wrap_domain
from lxml import etree

from vifplug import GenericVIFDriver, load_vifs
from vifplug.cli import main as cli
from vifplug.hook import HookError, main, rewrite
from vifplug.netmap import load_network_map

NS = "http://vifplug.org/xmlns/vifplug/1"
MAC = "fa:16:3e:12:34:56"

MAP = """\
[networks.red]
switch = "ovs"
bridge = "br-int"
vlan = 100
default_portgroup = "engineering"

[networks.red.portgroups.engineering]
vlan = 200

[networks.red.portgroups.sales]
trunk = [10, 20]
bandwidth = {inbound = {average = 1000, peak = 2000, burst = 512}}
override = true

[networks.green]
switch = "direct"
interface = "eth3"
mode = "bridge"
trust_guest_rx_filters = true
default_portgroup = "vdp"
[networks.green.portgroups.vdp]
manager_id = 7
type_id = 8
type_id_version = 9
bandwidth = {outbound = {average = 300}}

[networks.flat]
switch = "legacy"
bridge = "br-flat"
"""


@pytest.fixture
def map_path(tmp_path: Path) -> Path:
    path = tmp_path / "networks.toml"
    path.write_text(MAP)
    return path


def ovs_vif(**network: Any) -> Any:
    data = json.loads((EXAMPLES / "ovs-virtualport.json").read_text())
    data["network"] = {"name": "red", "bridge": "br-int", **network}
    return load_vifs(data)[0]


def domain(vif: Any, *, strip_requests: bool = False) -> bytes:
    driver = GenericVIFDriver()
    metadata = driver.metadata_xml([vif])
    if strip_requests:  # as vifplug wrote it before the merge rule
        for entry in metadata:
            for key in [k for k in entry.attrib if k.startswith("ask-") or k == "portgroup"]:
                del entry.attrib[key]
    return etree.tostring(wrap_domain([driver.interface_xml(vif)], metadata, name="pg"))


def ours(text: str) -> etree._Element:
    found = etree.fromstring(text).find(f"devices/interface/mac[@address='{MAC}']/..")
    assert found is not None
    return found


def vlan_of(iface: etree._Element) -> tuple[tuple[str, ...], bool] | None:
    vlan = iface.find("vlan")
    if vlan is None:
        return None
    return tuple(t.get("id") for t in vlan.findall("tag")), vlan.get("trunk") == "yes"


def checked(text: str, checker: DomainChecker) -> str:
    element = etree.fromstring(text)
    checker.validate(element)
    checker.start(element)
    return text


def test_a_guest_naming_no_portgroup_gets_the_default(map_path: Path,
                                                      libvirt_check: DomainChecker) -> None:
    vif = ovs_vif()  # asks no VLAN
    after = checked(rewrite(domain(vif), load_network_map(map_path)), libvirt_check)
    assert vlan_of(ours(after)) == (("200",), False)  # the default portgroup's, not the network's


def test_a_named_portgroup_gives_its_vlan_and_bandwidth(map_path: Path,
                                                        libvirt_check: DomainChecker) -> None:
    vif = ovs_vif(portgroup="sales")
    after = checked(rewrite(domain(vif), load_network_map(map_path)), libvirt_check)
    iface = ours(after)
    assert vlan_of(iface) == (("10", "20"), True)
    assert iface.find("bandwidth/inbound").attrib == {"average": "1000", "peak": "2000",
                                                      "burst": "512"}
    entry = etree.fromstring(after).find(f"metadata/{{{NS}}}interfaces/{{{NS}}}interface")
    assert entry.get("portgroup") == "sales"  # the guest's request stays for the next host


def test_the_guests_own_vlan_conflicting_with_the_portgroup_is_refused(
        map_path: Path, tmp_path: Path) -> None:
    vif = ovs_vif(vlan=100)  # the default portgroup gives 200, without override
    with pytest.raises(HookError) as caught:
        rewrite(domain(vif), load_network_map(map_path))
    assert str(caught.value) == (
        f"interface {MAC}: vlan: the interface asks 100, portgroup engineering of network red "
        f"({map_path}:8) gives 200; set override = true there to let the host win")
    # the same guest from before the rule (its metadata records no request): as before
    after = rewrite(domain(vif, strip_requests=True), load_network_map(map_path))
    assert vlan_of(ours(after)) == (("200",), False)
    # and a portgroup with override = true wins over the guest's own
    sales = rewrite(domain(ovs_vif(vlan=100, portgroup="sales")), load_network_map(map_path))
    assert vlan_of(ours(sales)) == (("10", "20"), True)


def test_the_guests_own_vlan_where_the_host_gives_none(map_path: Path) -> None:
    path = map_path.with_name("plain.toml")
    path.write_text('[networks.red]\nswitch = "ovs"\nbridge = "br-int"\n')
    after = rewrite(domain(ovs_vif(vlan=42)), load_network_map(path))
    assert vlan_of(ours(after)) == (("42",), False)


def test_a_portgroup_the_host_lacks_refuses_the_guest(map_path: Path) -> None:
    """The hook program: nothing on stdout, one line naming MAC, network, portgroup and map,
    exit 1 (libvirt refuses the incoming migration; the guest stays on the source)."""
    out, err = io.StringIO(), io.StringIO()
    code = main(["pg", "migrate", "begin", "-"], io.BytesIO(domain(ovs_vif(portgroup="ops"))),
                out, err, networks=str(map_path))
    assert code == 1
    assert out.getvalue() == ""
    assert err.getvalue() == (
        f"vifplug: interface {MAC}: network 'red' has no portgroup 'ops' on this host (its "
        f"portgroups: engineering, sales; {map_path})\n")


def test_a_direct_network_gives_its_profile_trust_and_bandwidth(
        map_path: Path, libvirt_check: DomainChecker) -> None:
    vif = load_vifs({**json.loads((EXAMPLES / "direct.json").read_text()), "mac": MAC,
                     "bandwidth": None, "network": {"name": "green", "interface": "eth2"}})[0]
    after = checked(rewrite(domain(vif), load_network_map(map_path)), libvirt_check)
    iface = ours(after)
    assert iface.get("trustGuestRxFilters") == "yes"
    assert iface.find("virtualport").get("type") == "802.1Qbg"
    assert iface.find("virtualport/parameters").attrib == {"managerid": "7", "typeid": "8",
                                                           "typeidversion": "9"}
    assert iface.find("bandwidth/outbound").attrib == {"average": "300"}
    # on to a Linux bridge: trustGuestRxFilters (macvtap only) goes, the bandwidth stays
    flat = etree.fromstring(after)
    entry = flat.find(f"metadata/{{{NS}}}interfaces/{{{NS}}}interface")
    entry.set("network", "flat")
    again = checked(rewrite(etree.tostring(flat), load_network_map(map_path)), libvirt_check)
    assert ours(again).get("trustGuestRxFilters") is None
    assert ours(again).find("bandwidth/outbound").attrib == {"average": "300"}


def test_the_guests_own_bandwidth_conflicting_with_the_host(map_path: Path) -> None:
    vif = load_vifs({**json.loads((EXAMPLES / "direct.json").read_text()), "mac": MAC,
                     "network": {"name": "green", "interface": "eth2"}})[0]
    with pytest.raises(HookError, match=(
            r"bandwidth: the interface asks inbound=10000/20000/1024 outbound=5000, portgroup "
            r"vdp of network green \(.*networks.toml:25\) gives outbound=300;")):
        rewrite(domain(vif), load_network_map(map_path))


def direct_vif(**keys: Any) -> Any:
    return load_vifs({**json.loads((EXAMPLES / "direct.json").read_text()), "mac": MAC,
                      "bandwidth": None, "network": {"name": "green", "interface": "eth2"},
                      **keys})[0]


def test_the_guests_own_trust_conflicting_with_the_host(map_path: Path) -> None:
    # vif.json's trust_guest_rx_filters is the interface layer (ask-trust); network green says
    # trust_guest_rx_filters = true (the map's line 19) and no portgroup of it says otherwise
    with pytest.raises(HookError, match=(
            r"^interface fa:16:3e:12:34:56: trust_guest_rx_filters: the interface asks no, "
            r"network green \(.*networks.toml:19\) gives yes; set override = true there")):
        rewrite(domain(direct_vif(trust_guest_rx_filters=False)), load_network_map(map_path))
    path = map_path.parent / "vif.json"
    path.write_text(direct_vif(trust_guest_rx_filters=False).to_json())
    out, err = io.StringIO(), io.StringIO()
    assert cli(["explain", "--networks", str(map_path), str(path)], out, err) == 2
    assert "trust_guest_rx_filters: the interface asks no" in err.getvalue()


def test_the_guests_own_trust_agreeing_with_the_host(map_path: Path,
                                                     libvirt_check: DomainChecker) -> None:
    before = domain(direct_vif(trust_guest_rx_filters=True))
    assert ours(before.decode()).get("trustGuestRxFilters") == "yes"
    after = checked(rewrite(before, load_network_map(map_path)), libvirt_check)
    assert ours(after).get("trustGuestRxFilters") == "yes"


def test_the_host_overriding_the_guests_trust(map_path: Path,
                                              libvirt_check: DomainChecker) -> None:
    text = map_path.read_text().replace('default_portgroup = "vdp"\n',
                                        'default_portgroup = "vdp"\noverride = true\n')
    map_path.write_text(text)
    after = checked(rewrite(domain(direct_vif(trust_guest_rx_filters=False)),
                            load_network_map(map_path)), libvirt_check)
    assert ours(after).get("trustGuestRxFilters") == "yes"


# --- shown: hook rewrite --explain, explain --networks ------------------------------------------


def test_hook_rewrite_explain(map_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "domain.xml"
    path.write_bytes(domain(ovs_vif(vlan=100, portgroup="sales")))
    out, err = io.StringIO(), io.StringIO()
    assert cli(["hook", "rewrite", "--explain", "--networks", str(map_path), str(path)],
               out, err) == 0, err.getvalue()
    assert out.getvalue() == (
        f"interface {MAC}, network 'red': OVS bridge br-int, trunk 10,20, bandwidth "
        "inbound=1000/2000/512\n"
        "  portgroup  sales (named by the interface)\n"
        f"  merge      mac          {MAC}                     interface\n"
        "             interfaceid  0f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f  interface\n"
        "             vlan         trunk 10,20                           portgroup sales "
        "(override; the interface asks 100)\n"
        "             bandwidth    inbound=1000/2000/512                 portgroup sales\n")


def test_explain_with_the_map(map_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "vif.json"
    path.write_text(ovs_vif().to_json())
    out, err = io.StringIO(), io.StringIO()
    assert cli(["explain", "--networks", str(map_path), str(path)], out, err) == 0
    lines = out.getvalue().splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("  host"))
    assert lines[start:] == [
        f"  host        network 'red' ({map_path}): OVS bridge br-int, vlan 100, portgroups "
        "engineering (default), sales",
        "  portgroup   engineering (the network's default)",
        f"  merge       mac          {MAC}                     interface",
        "              interfaceid  0f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f  interface",
        "              vlan         200                                   portgroup engineering",
    ]


@pytest.mark.parametrize(("network", "message"), [
    ({"portgroup": "ops"}, "interface {mac}: network 'red' has no portgroup 'ops' on this host "
                           "(its portgroups: engineering, sales; {path})"),
    ({"vlan": 7}, "interface {mac}: vlan: the interface asks 7, portgroup engineering of "
                  "network red ({path}:8) gives 200; set override = true there to let the host "
                  "win"),
    ({"name": "blue"}, "interface {mac}: network 'blue' is not defined on this host ({path})"),
])
@pytest.mark.parametrize("command", ["explain", "render", "plug"])
def test_explain_refuses_what_the_hook_would(network: dict[str, Any], message: str,
                                             command: str, map_path: Path,
                                             tmp_path: Path) -> None:
    """explain, render and plug with --networks: the hook's refusal, as bad input (exit 2)
    naming the file and the VIF's JSON path; nothing printed, nothing plugged."""
    path = tmp_path / "vif.json"
    path.write_text(ovs_vif(**network).to_json())
    out, err = io.StringIO(), io.StringIO()
    assert cli([command, "--networks", str(map_path), str(path)], out, err) == 2
    assert out.getvalue() == ""
    assert err.getvalue() == f"{path}: $.network: " + message.format(mac=MAC,
                                                                      path=map_path) + "\n"


def test_a_conflict_refuses_the_migration_with_one_line(map_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(["pg", "migrate", "begin", "-"], io.BytesIO(domain(ovs_vif(vlan=100))), out, err,
                networks=str(map_path))
    assert code == 1
    assert out.getvalue() == ""
    assert err.getvalue() == (
        f"vifplug: interface {MAC}: vlan: the interface asks 100, portgroup engineering of "
        f"network red ({map_path}:8) gives 200; set override = true there to let the host win\n")


def test_the_guests_own_profile_beats_the_one_it_arrived_with(tmp_path: Path) -> None:
    """An 802.1Qbg guest (its metadata records the Qbg parameters it asked for) that arrives
    carrying an 802.1Qbh profile an earlier host's map gave it gets its own 802.1Qbg on a host
    whose map gives no profile: what it asked for ranks above what it carries."""
    data = json.loads((EXAMPLES / "802.1qbg.json").read_text())
    data["mac"] = MAC
    vif = load_vifs(data)[0]
    text = etree.fromstring(domain(vif))
    entry = text.find(f"metadata/{{{NS}}}interfaces/{{{NS}}}interface")
    entry.set("profileid", "from-an-earlier-host")  # the metadata's memory of a Qbh hop
    path = tmp_path / "plain.toml"
    path.write_text('[networks.green]\nswitch = "direct"\ninterface = "eth3"\n')
    after = ours(rewrite(etree.tostring(text), load_network_map(path)))
    assert after.find("virtualport").get("type") == "802.1Qbg"
    assert after.find("virtualport/parameters").attrib == {
        "managerid": "11", "typeid": "1193047", "typeidversion": "2",
        "instanceid": vif.qbg.instance_id}
    # the same guest from before the rule (no request recorded): 802.1Qbh first, as before
    for key in [k for k in entry.attrib if k.startswith("ask-")]:
        del entry.attrib[key]
    before_rule = ours(rewrite(etree.tostring(text), load_network_map(path)))
    assert before_rule.find("virtualport").get("type") == "802.1Qbh"


def test_hook_rewrite_explain_without_vifplug_interfaces(map_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "domain.xml"
    path.write_bytes(etree.tostring(wrap_domain([], None, name="bare")))
    out = io.StringIO()
    assert cli(["hook", "rewrite", "--explain", "--networks", str(map_path), str(path)],
               out, io.StringIO()) == 0
    assert out.getvalue() == "no vifplug interface in this domain\n"
