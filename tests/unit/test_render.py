"""Every emitted <interface>: the exact tree per example and method, libvirt's RelaxNG, and a real
define + start on libvirt's test:///default driver."""

from __future__ import annotations

import copy
import io
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import EXAMPLES, DomainChecker, tree, xml
from lxml import etree

from vifplug import GenericVIFDriver, UnsupportedError, Vif, load_vifs
from vifplug.model import OvsVif

ID = "0f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f"


def example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    return data


def vif(name: str, **changes: Any) -> Vif:
    data = copy.deepcopy(example(name))
    data.update(changes)
    return load_vifs(data)[0]


OVS_VIRTUALPORT = f"""
<interface type='bridge'>
  <mac address='fa:16:3e:12:34:56'/>
  <source bridge='br-int'/>
  <vlan><tag id='100'/></vlan>
  <virtualport type='openvswitch'><parameters interfaceid='{ID}'/></virtualport>
  <target dev='tap0f6d3c1e-5b'/>
  <model type='virtio'/>
  <mtu size='1450'/>
</interface>"""

HYBRID = """
<interface type='bridge'>
  <mac address='fa:16:3e:12:34:56'/>
  <source bridge='qbr0f6d3c1e-5b'/>
  <target dev='tap0f6d3c1e-5b'/>
  <model type='virtio'/>
  <mtu size='1450'/>
</interface>"""

CASES: list[tuple[str, Vif, dict[str, Any], str]] = [
    ("bridge", vif("bridge"), {}, """
<interface type='bridge'>
  <mac address='fa:16:3e:12:34:56'/><source bridge='red'/><target dev='tap0f6d3c1e-5b'/>
  <model type='virtio'/><mtu size='1500'/>
</interface>"""),
    ("bridge, libvirt 3.0.0: no <mtu>", vif("bridge"), {"libvirt_version": "3.0.0"}, """
<interface type='bridge'>
  <mac address='fa:16:3e:12:34:56'/><source bridge='red'/><target dev='tap0f6d3c1e-5b'/>
  <model type='virtio'/>
</interface>"""),
    ("bridge firewalled: <filterref>", vif("bridge-firewalled"), {"firewall": True}, """
<interface type='bridge'>
  <mac address='fa:16:3e:7c:2f:1d'/><source bridge='br-red'/><target dev='tap7c2f1d0a-3b'/>
  <model type='virtio'/>
  <filterref filter='clean-traffic'>
    <parameter name='IP' value='198.51.100.10'/>
    <parameter name='MAC' value='fa:16:3e:7c:2f:1d'/>
  </filterref>
</interface>"""),
    ("bridge, host does not firewall: no <filterref>", vif("bridge-firewalled"), {}, """
<interface type='bridge'>
  <mac address='fa:16:3e:7c:2f:1d'/><source bridge='br-red'/><target dev='tap7c2f1d0a-3b'/>
  <model type='virtio'/>
</interface>"""),
    ("bridge, switch filters: no <filterref>", vif("bridge-firewalled", filtered=True),
     {"firewall": True}, """
<interface type='bridge'>
  <mac address='fa:16:3e:7c:2f:1d'/><source bridge='br-red'/><target dev='tap7c2f1d0a-3b'/>
  <model type='virtio'/>
</interface>"""),
    ("ovs virtualport", vif("ovs-virtualport"), {}, OVS_VIRTUALPORT),
    ("ovs, firewall: hybrid", vif("ovs-virtualport"), {"firewall": True}, HYBRID),
    ("ovs, firewall but filtered: virtualport", vif("ovs-virtualport", filtered=True),
     {"firewall": True}, OVS_VIRTUALPORT),
    ("ovs, libvirt 0.9.10: manual, no managed, no mtu", vif("ovs-virtualport"),
     {"libvirt_version": "0.9.10"}, """
<interface type='ethernet'>
  <mac address='fa:16:3e:12:34:56'/><target dev='tap0f6d3c1e-5b'/><model type='virtio'/>
</interface>"""),
    ("ovs trunk", vif("ovs-trunk"), {}, """
<interface type='bridge'>
  <mac address='fa:16:3e:a1:b2:c3'/>
  <source bridge='br-int'/>
  <vlan trunk='yes'><tag id='100'/><tag id='200'/><tag id='300'/></vlan>
  <virtualport type='openvswitch'>
    <parameters interfaceid='a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d'/>
  </virtualport>
  <target dev='tapa1b2c3d4-e5'/>
  <model type='virtio'/>
</interface>"""),
    ("ovs hybrid forced, with filter", vif("ovs-hybrid"), {}, """
<interface type='bridge'>
  <mac address='fa:16:3e:12:34:56'/>
  <source bridge='qbr0f6d3c1e-5b'/>
  <target dev='tap0f6d3c1e-5b'/>
  <model type='virtio'/>
  <filterref filter='clean-traffic'><parameter name='IP' value='198.51.100.10'/></filterref>
  <mtu size='1450'/>
</interface>"""),
    ("ovs manual forced, newest: managed='no'", vif("ovs-manual"), {}, """
<interface type='ethernet'>
  <mac address='fa:16:3e:12:34:56'/>
  <target dev='tap0f6d3c1e-5b' managed='no'/>
  <model type='virtio'/>
  <driver queues='4'/>
  <mtu size='1450'/>
</interface>"""),
    ("ovs manual, libvirt 5.0.0: no managed", vif("ovs-manual"), {"libvirt_version": "5.0.0"}, """
<interface type='ethernet'>
  <mac address='fa:16:3e:12:34:56'/>
  <target dev='tap0f6d3c1e-5b'/>
  <model type='virtio'/>
  <driver queues='4'/>
  <mtu size='1450'/>
</interface>"""),
    ("802.1qbg", vif("802.1qbg"), {}, """
<interface type='direct'>
  <mac address='fa:16:3e:5e:4d:3c'/>
  <source dev='eth2' mode='vepa'/>
  <virtualport type='802.1Qbg'>
    <parameters managerid='11' typeid='1193047' typeidversion='2'
                instanceid='09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f'/>
  </virtualport>
  <model type='virtio'/>
</interface>"""),
    ("802.1qbh: passthrough with a VLAN", vif("802.1qbh"), {}, """
<interface type='direct'>
  <mac address='fa:16:3e:6f:5e:4d'/>
  <source dev='eth2' mode='passthrough'/>
  <vlan><tag id='42'/></vlan>
  <virtualport type='802.1Qbh'><parameters profileid='finance'/></virtualport>
  <model type='virtio'/>
</interface>"""),
    ("direct bridge mode, devname, bandwidth", vif("direct"), {}, """
<interface type='direct'>
  <mac address='fa:16:3e:1a:2b:3c'/>
  <source dev='eth2' mode='bridge'/>
  <bandwidth>
    <inbound average='10000' peak='20000' burst='1024'/>
    <outbound average='5000'/>
  </bandwidth>
  <target dev='mvt1a2b3c4d'/>
  <model type='virtio'/>
</interface>"""),
    ("ethernet", vif("ethernet"), {}, """
<interface type='ethernet'>
  <mac address='fa:16:3e:2b:3c:4d'/>
  <target dev='tap2b3c4d5e-6f' managed='no'/>
  <model type='virtio'/>
  <link state='up'/>
  <mtu size='9000'/>
</interface>"""),
    ("vhostuser", vif("vhostuser"), {}, """
<interface type='vhostuser'>
  <mac address='fa:16:3e:3c:4d:5e'/>
  <source type='unix' path='/var/run/openvswitch/vhu3c4d5e6f-7a' mode='server'/>
  <model type='virtio'/>
  <driver queues='2'/>
</interface>"""),
    ("hostdev", vif("hostdev"), {}, """
<interface type='hostdev' managed='yes'>
  <mac address='fa:16:3e:4d:5e:6f'/>
  <source><address type='pci' domain='0x0000' bus='0x3b' slot='0x00' function='0x2'/></source>
  <vlan><tag id='300'/></vlan>
</interface>"""),
    ("vdpa", vif("vdpa"), {}, """
<interface type='vdpa'>
  <mac address='fa:16:3e:6f:7a:8b'/>
  <source dev='/dev/vhost-vdpa-0'/>
  <model type='virtio'/>
</interface>"""),
    ("vdpa with link state and alias", vif("vdpa", link_state="down", alias="ua-fast0"),
     {"libvirt_version": "6.9.0"}, """
<interface type='vdpa'>
  <mac address='fa:16:3e:6f:7a:8b'/>
  <source dev='/dev/vhost-vdpa-0'/>
  <model type='virtio'/>
  <link state='down'/>
  <alias name='ua-fast0'/>
</interface>"""),
    ("bridge isolated", vif("bridge-isolated"), {"libvirt_version": "6.1.0"}, """
<interface type='bridge'>
  <mac address='fa:16:3e:9a:8b:7c'/><source bridge='red'/><port isolated='yes'/>
  <target dev='tap9a8b7c6d-5e'/><model type='virtio'/>
</interface>"""),
    ("bridge isolated, shaped and filtered: libvirt's order", vif(
        "bridge-firewalled", isolated=True, bandwidth={"inbound": {"average": 1000}}),
     {"firewall": True}, """
<interface type='bridge'>
  <mac address='fa:16:3e:7c:2f:1d'/><source bridge='br-red'/>
  <bandwidth><inbound average='1000'/></bandwidth>
  <port isolated='yes'/>
  <target dev='tap7c2f1d0a-3b'/>
  <model type='virtio'/>
  <filterref filter='clean-traffic'>
    <parameter name='IP' value='198.51.100.10'/>
    <parameter name='MAC' value='fa:16:3e:7c:2f:1d'/>
  </filterref>
</interface>"""),
    ("bridge isolated: false emits nothing", vif("bridge", isolated=False), {}, """
<interface type='bridge'>
  <mac address='fa:16:3e:12:34:56'/><source bridge='red'/><target dev='tap0f6d3c1e-5b'/>
  <model type='virtio'/><mtu size='1500'/>
</interface>"""),
    ("alias alone (libvirt 3.9.0)", vif("bridge", alias="ua-net0"), {"libvirt_version": "3.9.0"},
     """
<interface type='bridge'>
  <mac address='fa:16:3e:12:34:56'/><source bridge='red'/><target dev='tap0f6d3c1e-5b'/>
  <model type='virtio'/><mtu size='1500'/><alias name='ua-net0'/>
</interface>"""),
]


@pytest.mark.parametrize(("vif_", "options", "expected"),
                         [pytest.param(*case[1:], id=case[0]) for case in CASES])
def test_interface_tree(vif_: Vif, options: dict[str, Any], expected: str,
                        libvirt_check: DomainChecker) -> None:
    driver = GenericVIFDriver(**options)
    element = driver.interface_xml(vif_)
    assert tree(element) == tree(xml(expected))
    assert tree(etree.fromstring(driver.render(vif_))) == tree(element)
    live = libvirt_check.check([element])
    assert_understood(element, live.find("devices/interface"))


def assert_understood(ours: etree._Element, live: etree._Element | None) -> None:
    """libvirt kept everything we said: each of our elements and attributes is in its live XML
    (it may add its own, e.g. an <alias> or a generated target)."""
    assert live is not None
    for key, value in ours.attrib.items():
        assert live.get(key) == value, (ours.tag, key)
    for child in ours:
        if child.tag == "target" and live.get("type") in ("hostdev", "vhostuser"):
            continue
        candidates = [c for c in live.findall(child.tag)
                      if all(c.get(k) == v for k, v in child.attrib.items())]
        assert candidates, f"libvirt dropped <{child.tag} {dict(child.attrib)}>"
        if len(child):
            assert_understood(child, candidates[0])


EXAMPLE_FILES = sorted(EXAMPLES.glob("*.json"))


def too_old(one: Vif, version: str | None) -> bool:
    """Whether ``version`` is older than a key or kind of ``one`` needs."""
    from vifplug.connections.base import VDPA, version_gates
    from vifplug.version import LibvirtVersion

    if version is None:
        return False
    needs = [since for _, since in version_gates(one)] + ([VDPA] if one.vif_type == "vdpa"
                                                          else [])
    return any(LibvirtVersion.parse(version) < since for since in needs)
VERSIONS = [None, "0.9.10", "0.9.11", "3.0.0", "3.1.0", "5.0.0", "5.1.0", "6.0.0", "6.1.0",
            "6.8.0", "6.9.0", "9.0.0"]


def test_examples_cover_every_vif_type_and_method() -> None:
    seen = {(v.vif_type, getattr(v, "plug", None))
            for path in EXAMPLE_FILES for v in load_vifs(path)}
    kinds = {kind for kind, _ in seen}
    assert kinds == {"bridge", "ovs", "802.1qbg", "802.1qbh", "direct", "ethernet",
                     "vhostuser", "hostdev", "vdpa"}
    assert {plug for kind, plug in seen if kind == "ovs"} >= {None, "hybrid", "manual"}


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_every_example_every_option_is_valid_libvirt(path: Path,
                                                     libvirt_check: DomainChecker) -> None:
    vifs = load_vifs(path)
    for firewall, version in itertools.product((False, True), VERSIONS):
        driver = GenericVIFDriver(firewall=firewall, libvirt_version=version)
        for one in vifs:
            if too_old(one, version):  # gated: an error naming the key (test_version_gates)
                with pytest.raises(UnsupportedError, match="needs libvirt >= "):
                    driver.interface_xml(one)
                continue
            if not isinstance(one, OvsVif):
                live = libvirt_check.check([driver.interface_xml(one)], driver.metadata_xml(vifs))
                assert_understood(driver.interface_xml(one), live.find("devices/interface"))
                continue
            plugs = [None, "hybrid", "manual", *(["virtualport"] if version != "0.9.10"
                                                 else [])]
            for plug in plugs:
                item = one.model_copy(update={"plug": plug}) if plug != one.plug else one
                if item.filter is not None and plug in ("virtualport", "manual"):
                    continue  # the model refuses that combination
                live = libvirt_check.check([driver.interface_xml(item)], driver.metadata_xml(vifs))
                assert_understood(driver.interface_xml(item), live.find("devices/interface"))


def test_array_renders_devices_in_order(libvirt_check: DomainChecker) -> None:
    vifs = load_vifs(EXAMPLES / "guest-three-nics.json")
    driver = GenericVIFDriver()
    devices = driver.devices_xml(vifs)
    assert devices.tag == "devices"
    assert [tree(e) for e in devices] == [tree(driver.interface_xml(v)) for v in vifs]
    assert [e.find("mac").get("address") for e in devices] == [v.mac for v in vifs]
    live = libvirt_check.check(list(devices), driver.metadata_xml(vifs))
    assert [e.find("mac").get("address") for e in live.findall("devices/interface")] == [
        v.mac for v in vifs]


def test_metadata_element(libvirt_check: DomainChecker) -> None:
    vifs = load_vifs(EXAMPLES / "guest-three-nics.json")
    metadata = GenericVIFDriver().metadata_xml(vifs)
    assert tree(metadata) == tree(xml("""
<vifplug:interfaces xmlns:vifplug='http://vifplug.org/xmlns/vifplug/1'>
  <vifplug:interface mac='fa:16:3e:12:34:56' network='blue'
                     interfaceid='0f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f' ask-vlan='100'/>
  <vifplug:interface mac='fa:16:3e:8d:9e:0f' network='red'/>
  <vifplug:interface mac='fa:16:3e:5e:4d:3c' network='green' managerid='11' typeid='1193047'
                     typeidversion='2' instanceid='09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f'
                     ask-managerid='11' ask-typeid='1193047' ask-typeidversion='2'/>
</vifplug:interfaces>"""))
    assert metadata.prefix == "vifplug"
    live = libvirt_check.check([], metadata)
    kept = live.find("metadata/{http://vifplug.org/xmlns/vifplug/1}interfaces")
    assert kept is not None
    assert tree(kept) == tree(metadata)


def test_render_is_pure_and_repeatable() -> None:
    one = vif("ovs-hybrid")
    driver = GenericVIFDriver(firewall=True)
    assert driver.render(one) == driver.render(one)
    assert driver.render(one, pretty=False) == etree.tostring(driver.interface_xml(one),
                                                              encoding="unicode")


FAILOVER = """
<devices>
  <interface type='bridge'>
    <mac address='fa:16:3e:3a:4b:5c'/>
    <source bridge='red'/>
    <target dev='tap3a4b5c6d-7e'/>
    <model type='virtio'/>
    <teaming type='persistent'/>
    <alias name='ua-backup0'/>
  </interface>
  <interface type='hostdev' managed='yes'>
    <mac address='fa:16:3e:3a:4b:5c'/>
    <source><address type='pci' domain='0x0000' bus='0x3b' slot='0x00' function='0x4'/></source>
    <teaming type='transient' persistent='ua-backup0'/>
    <alias name='ua-7d6c5b4a-3f2e-4d1c-8b0a-9f8e7d6c5b4a'/>
  </interface>
</devices>"""


@pytest.mark.parametrize("version", [None, "6.1.0", "9.0.0"])
def test_failover_pair_tree(version: str | None, libvirt_check: DomainChecker) -> None:
    vifs = load_vifs(EXAMPLES / "failover-pair.json")
    driver = GenericVIFDriver(libvirt_version=version)
    devices = driver.devices_xml(vifs)
    assert tree(devices) == tree(xml(FAILOVER))
    ours_all = [copy.deepcopy(element) for element in devices]
    live = libvirt_check.check(list(devices), driver.metadata_xml(vifs))
    for ours, theirs in zip(ours_all, live.findall("devices/interface"), strict=True):
        assert_understood(ours, theirs)


def test_failover_alias_derived_from_the_id(libvirt_check: DomainChecker) -> None:
    """Without ``alias``, the persistent half is ``ua-`` + its id, and the VF names that."""
    data = json.loads((EXAMPLES / "failover-pair.json").read_text())
    del data[0]["alias"]
    data[1]["teaming"]["persistent"] = f"ua-{data[0]['id']}"
    vifs = load_vifs(data)
    devices = GenericVIFDriver().devices_xml(vifs)
    first, second = devices
    assert first.find("alias").get("name") == f"ua-{data[0]['id']}"
    assert second.find("teaming").attrib == {"type": "transient",
                                             "persistent": f"ua-{data[0]['id']}"}
    libvirt_check.check(list(devices))


#: Each gated key or kind: an example VIF using it, the path the error names, the version.
GATES = [
    ("bridge-isolated", 0, "$.isolated", (6, 1, 0)),
    ("failover-pair", 0, "$.teaming", (6, 1, 0)),
    ("failover-pair", 1, "$.teaming", (6, 1, 0)),
    ("vdpa", 0, "$.vif_type", (6, 9, 0)),
]


def _below(version: tuple[int, int, int]) -> str:
    major, minor, micro = version
    if micro:
        return f"{major}.{minor}.{micro - 1}"
    return f"{major}.{minor - 1}.99" if minor else f"{major - 1}.99.99"


@pytest.mark.parametrize(("name", "index", "path", "since"), GATES,
                         ids=[f"{g[0]}-{g[1]}" for g in GATES])
def test_version_gates(name: str, index: int, path: str, since: tuple[int, int, int],
                       libvirt_check: DomainChecker) -> None:
    """One below the version: an error naming the key and the version (never a silent drop);
    at it and above: emitted, valid for libvirt's RelaxNG and started on test:///default."""
    one = load_vifs(EXAMPLES / f"{name}.json")[index]
    at = ".".join(map(str, since))
    below = _below(since)
    with pytest.raises(UnsupportedError) as raised:
        GenericVIFDriver(libvirt_version=below).interface_xml(one)
    what = "'vdpa' " if path == "$.vif_type" else ""
    assert str(raised.value) == (f"{path}: {what}needs libvirt >= {at} (the XML is for libvirt "
                                 f"{below})")
    for version in (at, "9.0.0", None):
        element = GenericVIFDriver(libvirt_version=version).interface_xml(one)
        live = libvirt_check.check([element])
        assert_understood(element, live.find("devices/interface"))


def test_alias_gate() -> None:
    one = vif("bridge", alias="ua-net0")
    with pytest.raises(UnsupportedError, match=r"^\$\.alias: needs libvirt >= 3\.9\.0 \(the XML is "
                       r"for libvirt 3\.8\.0\)$"):
        GenericVIFDriver(libvirt_version="3.8.0").interface_xml(one)


def test_the_cli_names_the_array_index_of_a_gated_key() -> None:
    from vifplug.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = main(["render", "--libvirt-version", "6.0.0", str(EXAMPLES / "failover-pair.json")],
                stdout=out, stderr=err)
    assert code == 2
    assert out.getvalue() == ""
    assert "failover-pair.json: $[0].teaming: needs libvirt >= 6.1.0 (the XML is for libvirt " \
        "6.0.0)" in err.getvalue()
