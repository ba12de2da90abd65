"""Issue 14's interface keys — ``virtio`` (ring sizes, packed), ``coalesce``, ``rom``,
``backend``, ``trust_guest_rx_filters``: the exact ``<interface>`` tree, libvirt's RelaxNG and a
define + start on test:///default at and above each key's libvirt version, and an error naming
the key and the version one release below it (never a silent drop)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from helpers import DomainChecker, tree, xml

from vifplug import GenericVIFDriver, Vif, load_vifs
from vifplug.errors import UnsupportedError
from vifplug.merge import Layer, MergeError, interface_layer, merge
from vifplug.xml import metadata_entry

ID = "0f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f"
MAC = "fa:16:3e:12:34:56"

BASES: dict[str, dict[str, Any]] = {
    "bridge": {"network": {"name": "red", "bridge": "red"}},
    "ovs": {"network": {"name": "blue", "bridge": "br-int"}, "ovs": {"interface_id": ID}},
    "ethernet": {"network": {"name": "routed"}},
    "direct": {"network": {"name": "green", "interface": "eth2"}},
    "vhostuser": {"network": {"name": "dpdk"}, "vhostuser": {"socket": "/run/vt-vhu.sock"}},
    "hostdev": {"network": {"name": "sriov"}, "hostdev": {"pci": "0000:3b:00.2"}},
}
#: What each base renders to, with ``{}`` where the new key's XML goes.
SHAPES = {
    "bridge": f"""<interface type='bridge'{{attr}}><mac address='{MAC}'/><source bridge='red'/>
        <target dev='tap0f6d3c1e-5b'/><model type='virtio'/>{{}}</interface>""",
    "ovs": f"""<interface type='bridge'><mac address='{MAC}'/><source bridge='br-int'/>
        <virtualport type='openvswitch'><parameters interfaceid='{ID}'/></virtualport>
        <target dev='tap0f6d3c1e-5b'/><model type='virtio'/>{{}}</interface>""",
    "direct": f"""<interface type='direct'{{attr}}><mac address='{MAC}'/>
        <source dev='eth2' mode='vepa'/><model type='virtio'/>{{}}</interface>""",
    "vhostuser": f"""<interface type='vhostuser'><mac address='{MAC}'/>
        <source type='unix' path='/run/vt-vhu.sock' mode='server'/><model type='virtio'/>{{}}
        </interface>""",
    "hostdev": f"""<interface type='hostdev' managed='yes'{{attr}}><mac address='{MAC}'/>
        <source><address type='pci' domain='0x0000' bus='0x3b' slot='0x00' function='0x2'/>
        </source>{{}}</interface>""",
}


def make(kind: str, **keys: Any) -> Vif:
    return load_vifs({"id": ID, "vif_type": kind, "mac": MAC, **BASES[kind], **keys})[0]


def expected(kind: str, inner: str = "", attr: str = "") -> str:
    return SHAPES[kind].replace("{attr}", attr).replace("{}", inner)


class Case(NamedTuple):
    """One key: its VIF, its JSON path, its version, the release below it, its XML."""

    name: str
    kind: str
    keys: dict[str, Any]
    key: str
    since: str
    below: str
    inner: str = ""
    attr: str = ""


CASES = [
    Case("rx_queue_size", "bridge", {"virtio": {"rx_queue_size": 512}}, "virtio.rx_queue_size",
         "2.3.0", "2.2.0", "<driver rx_queue_size='512'/>"),
    Case("rx_queue_size on macvtap", "direct", {"virtio": {"rx_queue_size": 1024}},
         "virtio.rx_queue_size", "2.3.0", "2.2.0", "<driver rx_queue_size='1024'/>"),
    Case("tx_queue_size (vhostuser)", "vhostuser",
         {"virtio": {"tx_queue_size": 1024}, "queues": 2}, "virtio.tx_queue_size", "3.7.0",
         "3.6.0", "<driver queues='2' tx_queue_size='1024'/>"),
    Case("packed", "bridge", {"virtio": {"packed": True, "rx_queue_size": 256}},
         "virtio.packed", "6.3.0", "6.2.0", "<driver rx_queue_size='256' packed='on'/>"),
    Case("packed on vhostuser", "vhostuser", {"virtio": {"packed": True}}, "virtio.packed",
         "6.3.0", "6.2.0", "<driver packed='on'/>"),
    Case("coalesce", "bridge", {"coalesce": {"rx_max_frames": 7}}, "coalesce", "3.3.0", "3.2.0",
         "<coalesce><rx><frames max='7'/></rx></coalesce>"),
    Case("coalesce, ovs virtualport", "ovs", {"coalesce": {"rx_max_frames": 64}}, "coalesce",
         "3.3.0", "3.2.0", "<coalesce><rx><frames max='64'/></rx></coalesce>"),
    Case("rom disabled", "bridge", {"rom": {"enabled": False}}, "rom.enabled", "4.3.0", "4.2.0",
         "<rom enabled='no'/>"),
    Case("rom disabled, hostdev", "hostdev", {"rom": {"enabled": False}}, "rom.enabled",
         "4.3.0", "4.2.0", "<rom enabled='no'/>"),
    Case("rom file and bar", "bridge", {"rom": {"bar": False, "file": "/usr/share/vt/pxe.rom"}},
         "rom", "0.9.10", "0.9.9", "<rom bar='off' file='/usr/share/vt/pxe.rom'/>"),
    Case("rom bar on, vhostuser", "vhostuser", {"rom": {"bar": True}}, "rom", "0.9.10",
         "0.9.9", "<rom bar='on'/>"),
    Case("backend", "bridge", {"backend": {"tap": "/dev/net/tun", "vhost": "/dev/vhost-net"}},
         "backend", "1.2.9", "1.2.8", "<backend tap='/dev/net/tun' vhost='/dev/vhost-net'/>"),
    Case("trust, direct", "direct", {"trust_guest_rx_filters": True}, "trust_guest_rx_filters",
         "1.2.10", "1.2.9", attr=" trustGuestRxFilters='yes'"),
    Case("trust no, hostdev", "hostdev", {"trust_guest_rx_filters": False},
         "trust_guest_rx_filters", "1.2.10", "1.2.9", attr=" trustGuestRxFilters='no'"),
]
IDS = [case.name for case in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("version", ["at", "9.0.0", None])
def test_emitted_at_and_above_the_gate(case: Case, version: str | None,
                                       libvirt_check: DomainChecker) -> None:
    driver = GenericVIFDriver(libvirt_version=case.since if version == "at" else version)
    element = driver.interface_xml(make(case.kind, **case.keys))
    assert tree(element) == tree(xml(expected(case.kind, case.inner, case.attr)))
    live = libvirt_check.check([element]).find("devices/interface")
    assert live is not None
    for key, value in element.attrib.items():
        assert live.get(key) == value
    for child in element:  # libvirt kept what we said (it adds aliases, targets, addresses)
        assert any(tree(found) == tree(child) for found in live.findall(child.tag)), child.tag


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_refused_one_release_below_the_gate(case: Case) -> None:
    one = make(case.kind, **case.keys)
    with pytest.raises(UnsupportedError) as raised:
        GenericVIFDriver(libvirt_version=case.below).interface_xml(one)
    assert str(raised.value) == (f"$.{case.key}: needs libvirt >= {case.since} (the XML is for "
                                 f"libvirt {case.below})")


def test_the_gate_is_an_error_on_the_command_line(tmp_path: Path, run_module: Any) -> None:
    path = tmp_path / "vif.json"
    path.write_text(json.dumps({"id": ID, "vif_type": "bridge", "mac": MAC, **BASES["bridge"],
                                "virtio": {"packed": True}}))
    result = run_module("render", "--libvirt-version", "6.2.0", str(path))
    assert (result.code, result.stdout) == (2, "")
    assert "$.virtio.packed: needs libvirt >= 6.3.0 (the XML is for libvirt 6.2.0)" in \
        result.stderr
    assert run_module("render", "--libvirt-version", "6.3.0", str(path)).code == 0


def test_everything_at_once_in_libvirts_order(libvirt_check: DomainChecker) -> None:
    one = make("bridge", queues=4, mtu=1400, link_state="up",
               bandwidth={"inbound": {"average": 1000}},
               virtio={"rx_queue_size": 1024, "packed": True},
               backend={"tap": "/dev/net/tun"}, coalesce={"rx_max_frames": 32},
               rom={"enabled": False})
    element = GenericVIFDriver().interface_xml(one)
    assert tree(element) == tree(xml(f"""
<interface type='bridge'>
  <mac address='{MAC}'/><source bridge='red'/>
  <bandwidth><inbound average='1000'/></bandwidth>
  <target dev='tap0f6d3c1e-5b'/><model type='virtio'/>
  <driver queues='4' rx_queue_size='1024' packed='on'/>
  <backend tap='/dev/net/tun'/>
  <link state='up'/><mtu size='1400'/>
  <coalesce><rx><frames max='32'/></rx></coalesce>
  <rom enabled='no'/>
</interface>"""))
    live = libvirt_check.check([element]).find("devices/interface")
    assert live is not None
    # libvirt writes its children in the order vifplug rendered them
    assert [c.tag for c in live if c.tag not in ("alias", "address")] == [c.tag for c in element]


def test_coalesce_with_hybrid_plug() -> None:
    element = GenericVIFDriver(firewall=True).interface_xml(
        make("ovs", coalesce={"rx_max_frames": 7}))
    assert element.find("source").get("bridge") == "qbr0f6d3c1e-5b"
    assert tree(element.find("coalesce")) == tree(xml(
        "<coalesce><rx><frames max='7'/></rx></coalesce>"))


def test_coalesce_never_on_the_manual_method_of_an_old_libvirt() -> None:
    # libvirt < 0.9.11 gets the manual method (type='ethernet', which refuses <coalesce>); the
    # coalesce gate (3.3.0) is far above it, so the key is refused either way.
    with pytest.raises(UnsupportedError, match=r"^\$\.coalesce: needs libvirt >= 3\.3\.0"):
        GenericVIFDriver(libvirt_version="0.9.10").interface_xml(
            make("ovs", coalesce={"rx_max_frames": 7}))


# --- trust_guest_rx_filters is the interface layer of the merge rule ---


def test_trust_is_recorded_as_the_guests_request() -> None:
    assert metadata_entry(make("direct", trust_guest_rx_filters=True))["ask-trust"] == "yes"
    assert metadata_entry(make("hostdev", trust_guest_rx_filters=False))["ask-trust"] == "no"
    assert "ask-trust" not in metadata_entry(make("direct"))


def test_trust_asked_and_a_portgroup_saying_otherwise_conflict() -> None:
    asked = interface_layer(metadata_entry(make("direct", trust_guest_rx_filters=True)))
    assert asked.values["trust_guest_rx_filters"] is True
    group = Layer("portgroup locked", {"trust_guest_rx_filters": False},
                  described="portgroup locked of network green")
    with pytest.raises(MergeError) as raised:
        merge(asked, group, None)
    assert str(raised.value) == (
        f"interface {MAC}: trust_guest_rx_filters: the interface asks yes, portgroup locked of "
        "network green gives no; set override = true there to let the host win")
    won = merge(asked, group._replace(override=True), None)["trust_guest_rx_filters"]
    assert (won.value, won.source, won.overridden) == (False, "portgroup locked", True)
    same = merge(asked, group._replace(values={"trust_guest_rx_filters": True}), None)
    assert same["trust_guest_rx_filters"].value is True
    alone = merge(asked, None, None)["trust_guest_rx_filters"]
    assert (alone.value, alone.source) == (True, "interface")
