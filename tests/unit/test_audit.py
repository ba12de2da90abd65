"""``vifplug audit``'s pure matching (vifplug/audit.py): table-driven cases, one or more per
finding kind, over hand-made inventories, domains and maps; the domain XML reader; the JSON
report's documented schema; the CLI over stand-in edges. The same on a real netns + OVS:
tests/functional/test_audit_real.py."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from vifplug.audit import (
    Domain,
    DomainInterface,
    HostLink,
    Inventory,
    LockFile,
    OvsInterface,
    audit,
    domain_from_xml,
    report_json,
    report_text,
)
from vifplug.cli import main
from vifplug.netmap import load_network_map

VIF_ID = "5c4f1e2a-9b3d-4e5f-8a7b-6c5d4e3f2a1b"
P = VIF_ID[:11]
MAC = "fa:16:3e:11:22:33"
IFACE_ID = "9a8b7c6d-1e2f-4a3b-8c9d-0e1f2a3b4c5d"
DOM_UUID = "11111111-2222-4333-8444-555555555555"
OTHER_UUID = "66666666-7777-4888-8999-aaaaaaaaaaaa"

MAP = """\
[networks.blue]
switch = "ovs"
bridge = "br-int"
vlan = 100

[networks.trunked]
switch = "ovs"
bridge = "br-int"
trunk = [10, 20]

[networks.virt]
switch = "ovn"
logical_switch = "ls-virt"

[networks.red]
switch = "legacy"
bridge = "br-red"
"""


@pytest.fixture(scope="module")
def networks(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("map") / "networks.toml"
    path.write_text(MAP)
    return load_network_map(path).networks


def marks(**extra: str) -> tuple[tuple[str, str], ...]:
    ids = {"iface-id": IFACE_ID, "iface-status": "active", "attached-mac": MAC,
           "vm-uuid": DOM_UUID, **extra}
    return tuple(sorted(ids.items()))


# --- building blocks: a hybrid VIF, a virtualport VIF, their domains --------------------------

QBR = HostLink("qbr" + P, "bridge", 10, mtu=1500)
QVB = HostLink("qvb" + P, "veth", 11, master="qbr" + P, peer="qvo" + P, mtu=1500)
QVO = HostLink("qvo" + P, "veth", 12, peer="qvb" + P, mtu=1500)
TAP = HostLink("tap" + P, "tun", 13, master="qbr" + P, mtu=1500)
QVO_PORT = OvsInterface("qvo" + P, "br-int", "u-qvo", external_ids=marks(), mtu_request=1500,
                        tag=100)
HYBRID = DomainInterface(MAC, "bridge", source_bridge="qbr" + P, target="tap" + P,
                         interfaceid=IFACE_ID, mtu=1500, network="blue")
VP_PORT = OvsInterface("tap" + P, "br-int", "u-tap",
                       external_ids=tuple(sorted({"iface-id": IFACE_ID, "attached-mac": MAC,
                                                  "vm-id": DOM_UUID,
                                                  "iface-status": "active"}.items())),
                       mtu_request=1500, tag=100)
VP = DomainInterface(MAC, "bridge", source_bridge="br-int", target="tap" + P,
                     virtualport="openvswitch", interfaceid=IFACE_ID, mtu=1500, network="blue")


def host(*links: HostLink, ovs: tuple[OvsInterface, ...] | None = (),
         locks: tuple[LockFile, ...] = ()) -> Inventory:
    return Inventory("host", links, ovs, ("br-int", "br-phy"), locks)


def dom(*interfaces: DomainInterface, running: bool = True, uuid: str = DOM_UUID) -> Domain:
    return Domain("guest1", uuid, running, interfaces)


HYBRID_HOST = host(QBR, QVB, QVO, TAP, ovs=(QVO_PORT,))

# (case id, inventory, domains, expected [(kind, subject)], a word the first summary holds)
CASES: list[tuple[str, Inventory, tuple[Domain, ...], list[tuple[str, str]], str]] = [
    ("clean hybrid guest", HYBRID_HOST, (dom(HYBRID),), [], ""),
    ("clean virtualport guest", host(TAP, ovs=(VP_PORT,)), (dom(VP),), [], ""),
    ("defined, not running, guest claims its plugged hybrid VIF",
     host(QBR, QVB, QVO, ovs=(QVO_PORT,)), (dom(HYBRID, running=False),), [], ""),
    ("guest destroyed behind vifplug's back: qbr/qvb/qvo orphans",
     host(QBR, QVB, QVO, ovs=(QVO_PORT,)), (),
     [("orphan", "qbr" + P), ("orphan", "qvb" + P), ("orphan", "qvo" + P)], "no domain has it"),
    ("OVS port whose vm-uuid names a domain that has no such interface",
     host(ovs=(replace(QVO_PORT, external_ids=marks(**{"attached-mac": "fa:16:3e:99:99:99",
                                                       "iface-id": "other"})),)),
     (dom(replace(HYBRID, mac="fa:16:3e:00:00:01", source_bridge="qbrzzzzzzzzzzz",
                  target="tapzzzzzzzzzzz", interfaceid=None, network=None)),),
     [("orphan", "qvo" + P)], "gc leaves it"),
    ("OVS port with a MAC no domain has, not vifplug-shaped",
     host(ovs=(replace(VP_PORT, name="vnet7"),)), (), [("orphan", "vnet7")], "attached-mac"),
    ("qbr deleted by hand: missing",
     host(QVB, QVO, replace(TAP, master=None), ovs=(QVO_PORT,)), (dom(HYBRID),),
     [("missing", MAC)], "bridge qbr" + P),
    ("virtualport port deleted: missing", host(TAP), (dom(VP),), [("missing", MAC)],
     "OVS port tap" + P),
    ("a defined domain's missing host side is not missing", host(), (dom(HYBRID, running=False),),
     [], ""),
    ("an interface without vifplug metadata is never missing", host(),
     (dom(replace(HYBRID, network=None)),), [], ""),
    ("re-tagged by hand", host(QBR, QVB, QVO, TAP, ovs=(replace(QVO_PORT, tag=200),)),
     (dom(HYBRID),), [("mismatch", "qvo" + P)], "tag 200 (expected 100)"),
    ("MTU changed", host(QBR, QVB, QVO, TAP, ovs=(replace(QVO_PORT, mtu_request=9000),)),
     (dom(HYBRID),), [("mismatch", "qvo" + P)], "mtu_request 9000 (expected 1500)"),
    ("iface-id changed",
     host(QBR, QVB, QVO, TAP, ovs=(replace(QVO_PORT, external_ids=marks(**{"iface-id": "x"})),)),
     (dom(HYBRID),), [("mismatch", "qvo" + P)], "iface-id x"),
    ("trunk differs", host(TAP, ovs=(replace(VP_PORT, tag=None, trunks=(10,)),)),
     (dom(replace(VP, network="trunked")),), [("mismatch", "tap" + P)], "trunks 10"),
    ("OVN port with a tag", host(TAP, ovs=(replace(VP_PORT, tag=5),)),
     (dom(replace(VP, network="virt")),), [("mismatch", "tap" + P)], "tag 5 (expected none)"),
    ("port on another bridge", host(TAP, ovs=(replace(VP_PORT, bridge="br-phy"),)),
     (dom(VP),), [("mismatch", "tap" + P)], "bridge br-phy"),
    ("legacy network: no OVS expectations", host(TAP, ovs=(replace(VP_PORT, tag=5),)),
     (dom(replace(VP, network="red")),), [], ""),
    ("foreign OVS port: shaped name, no marks",
     host(ovs=(OvsInterface("tapdeadbeef01", "br-int", "u-f"),)), (),
     [("foreign", "tapdeadbeef01")], "no vifplug/os-vif/libvirt marks"),
    ("foreign Linux bridge", host(HostLink("qbrhandmade", "bridge", 20)), (),
     [("foreign", "qbrhandmade")], "Linux bridge"),
    ("a vifplug lock file marks a lone TAP",
     host(HostLink("tap" + P, "tun", 30),
          locks=(LockFile(f"/run/vifplug/locks/host-{VIF_ID}.lock", "host", VIF_ID),)), (),
     [("orphan", "tap" + P)], "vifplug lock file"),
    ("another scope's lock file is no mark",
     host(HostLink("tap" + P, "tun", 30),
          locks=(LockFile(f"/locks/netns-x-{VIF_ID}.lock", "netns-x", VIF_ID),)), (),
     [("foreign", "tap" + P)], ""),
    ("an isolated guest's TAP on its Linux bridge, isolated: clean",
     host(HostLink("tap" + P, "tun", 30, master="br-red", isolated=True),
          HostLink("br-red", "bridge", 3)),
     (dom(DomainInterface(MAC, "bridge", source_bridge="br-red", target="tap" + P,
                          network="red", isolated=True)),), [], ""),
    ("an isolated guest's TAP no longer isolated: missing",
     host(HostLink("tap" + P, "tun", 30, master="br-red", isolated=False),
          HostLink("br-red", "bridge", 3)),
     (dom(DomainInterface(MAC, "bridge", source_bridge="br-red", target="tap" + P,
                          network="red", isolated=True)),),
     [("missing", MAC)], f"the isolation of bridge port tap{P} (<port isolated='yes'/>) gone"),
    ("a domain's own TAP on a Linux bridge (no marks) is in use",
     host(HostLink("tap" + P, "tun", 30, master="br-red"), HostLink("br-red", "bridge", 3)),
     (dom(DomainInterface(MAC, "bridge", source_bridge="br-red", target="tap" + P,
                          network="red")),), [], ""),
    ("host networks' rows are never VIFs",
     host(ovs=(OvsInterface("tapuplink0", "br-phy", "u-h", host_owned=True),)), (), [], ""),
    ("iface-id alone (an agent's port) is no VM mark",
     host(ovs=(OvsInterface("metadata0", "br-int", "u-m",
                            external_ids=(("iface-id", "x"),)),)), (), [], ""),
    ("a marked row found by MAC only is claimed",
     host(ovs=(replace(VP_PORT, name="vnet3"),)),
     (dom(replace(VP, target="vnet3", network=None)),), [], ""),
    ("no OVSDB: devices only", host(QBR, QVB, QVO, ovs=None), (),
     [("foreign", "qbr" + P), ("foreign", "qvb" + P), ("foreign", "qvo" + P)], ""),
]


@pytest.mark.parametrize(("inventory", "domains", "expected", "said"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_findings(inventory: Inventory, domains: tuple[Domain, ...],
                  expected: list[tuple[str, str]], said: str, networks: Any) -> None:
    result = audit(inventory, domains, networks, map_path="networks.toml")
    assert [(f.kind, f.subject) for f in result.findings] == expected
    assert result.clean == (not expected)
    if said:
        assert said in result.findings[0].summary
    for finding in result.findings:
        assert finding.evidence, finding
        json.dumps(finding.to_json())  # every piece of evidence is JSON


def test_evidence_of_an_orphan_names_its_rows_and_marks(networks: Any) -> None:
    result = audit(host(QBR, QVB, QVO, ovs=(QVO_PORT,)), (), networks)
    qbr, _, qvo = result.findings
    assert qbr.evidence["device"]["kind"] == "bridge"
    assert qbr.evidence["marks"] == [f"OVS interface qvo{P} external_ids:attached-mac={MAC}"]
    assert qvo.evidence["ovs"]["external_ids"]["vm-uuid"] == DOM_UUID
    assert qvo.evidence["device"]["peer"] == "qvb" + P
    assert qvo.domain is None


def test_evidence_of_a_mismatch_lists_each_difference(networks: Any) -> None:
    port = replace(QVO_PORT, tag=200, mtu_request=9000)
    (finding,) = audit(host(QBR, QVB, QVO, TAP, ovs=(port,)), (dom(HYBRID),), networks).findings
    assert finding.evidence["differences"] == [
        {"field": "tag", "actual": 200, "expected": 100},
        {"field": "mtu_request", "actual": 9000, "expected": 1500}]
    assert finding.domain is not None
    assert finding.domain.uuid == DOM_UUID


def test_no_map_no_mismatch() -> None:
    port = replace(QVO_PORT, tag=200)
    result = audit(host(QBR, QVB, QVO, TAP, ovs=(port,)), (dom(HYBRID),), None)
    assert result.clean
    assert "no network map" in report_text(result)


# --- domain XML -------------------------------------------------------------------------------

DOMAIN_XML = f"""<domain type='qemu'>
  <name>guest1</name><uuid>{DOM_UUID.upper()}</uuid>
  <metadata><vifplug:interfaces xmlns:vifplug="https://vifplug.dev/xmlns/1">
    <vifplug:interface mac="{MAC}" network="blue" interfaceid="{IFACE_ID}"/>
  </vifplug:interfaces></metadata>
  <devices>
    <interface type='bridge'><mac address='{MAC.upper()}'/><source bridge='qbr{P}'/>
      <target dev='tap{P}'/><mtu size='1500'/></interface>
    <interface type='bridge'><mac address='52:54:00:00:00:01'/><source bridge='br-int'/>
      <virtualport type='openvswitch'><parameters interfaceid='{OTHER_UUID}'/></virtualport>
      <target dev='vnet0'/></interface>
    <interface type='direct'><mac address='52:54:00:00:00:02'/>
      <source dev='eth1' mode='vepa'/></interface>
  </devices>
</domain>"""


def test_domain_from_xml() -> None:
    from vifplug.spec import METADATA_NS

    domain = domain_from_xml(DOMAIN_XML.replace("https://vifplug.dev/xmlns/1", METADATA_NS),
                             running=True)
    assert (domain.name, domain.uuid, domain.running) == ("guest1", DOM_UUID, True)
    first, second, third = domain.interfaces
    assert first == HYBRID
    assert (second.virtualport, second.interfaceid, second.network) == (
        "openvswitch", OTHER_UUID, None)
    assert (third.type, third.source_dev, third.target) == ("direct", "eth1", None)


# --- reports ----------------------------------------------------------------------------------


def _check_schema(report: dict[str, Any]) -> None:
    """docs/src/audit.md's JSON schema, format 1."""
    assert set(report) == {"format", "scope", "clean", "counts", "checked", "findings"}
    assert report["format"] == 1
    assert isinstance(report["scope"], str)
    assert set(report["counts"]) == {"orphan", "missing", "mismatch", "foreign"}
    assert set(report["checked"]) == {"devices", "ovs_ports", "locks", "pools", "domains",
                                     "network_map"}
    for finding in report["findings"]:
        assert set(finding) == {"kind", "subject", "summary", "domain", "evidence"}
        assert finding["kind"] in report["counts"]
        assert finding["domain"] is None or set(finding["domain"]) == {"name", "uuid", "running"}
        assert isinstance(finding["evidence"], dict)
    assert report["clean"] == (not report["findings"])
    assert sum(report["counts"].values()) == len(report["findings"])


@pytest.mark.parametrize(("inventory", "domains"), [(case[1], case[2]) for case in CASES],
                         ids=[case[0] for case in CASES])
def test_json_schema(inventory: Inventory, domains: tuple[Domain, ...], networks: Any) -> None:
    report = report_json(audit(inventory, domains, networks, map_path="m.toml"))
    _check_schema(json.loads(json.dumps(report)))


def test_text_report() -> None:
    result = audit(host(QBR, QVB, QVO, ovs=(QVO_PORT,)), (), None)
    lines = report_text(result).splitlines()
    assert lines[0].startswith(f"orphan   Linux bridge qbr{P}: no domain has it")
    assert lines[-1].startswith("3 findings (3 orphan): 3 vifplug-shaped devices, 1 OVS ports")
    clean = report_text(audit(HYBRID_HOST, (dom(HYBRID),), None))
    assert clean.startswith("clean: 4 vifplug-shaped devices, 1 OVS ports, 1 domains")


# --- the CLI over stand-in edges ----------------------------------------------------------------


@pytest.fixture
def edges(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    from vifplug.host import inventory as edge

    seen: dict[str, Any] = {"inventory": HYBRID_HOST, "domains": ()}
    monkeypatch.setattr(edge, "read_inventory",
                        lambda host, lock_dir, pools=None: seen["inventory"])

    def domains(uri: str | None) -> tuple[Domain, ...]:
        seen["uri"] = uri
        return tuple(seen["domains"])

    monkeypatch.setattr(edge, "read_domains", domains)
    monkeypatch.setenv("VIFPLUG_NETWORKS", "/nonexistent/networks.toml")
    return seen


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_cli_findings_exit_1_and_json(edges: dict[str, Any], tmp_path: Path) -> None:
    code, out, err = run("audit", "--json", "--connect", "test:///default")
    assert (code, err) == (1, "")
    report = json.loads(out)
    _check_schema(report)
    assert report["counts"]["orphan"] == 4  # qbr, qvb, qvo and the guest's TAP
    assert report["checked"]["network_map"] is None
    assert edges["uri"] == "test:///default"


def test_cli_clean_exit_0(edges: dict[str, Any], tmp_path: Path) -> None:
    edges["domains"] = (dom(HYBRID),)
    (tmp_path / "n.toml").write_text(MAP)
    code, out, _ = run("audit", "--networks", str(tmp_path / "n.toml"))
    assert code == 0
    assert out.startswith("clean: ")


def test_cli_bad_map_exit_2(edges: dict[str, Any], tmp_path: Path) -> None:
    code, out, err = run("audit", "--networks", str(tmp_path / "missing.toml"))
    assert (code, out) == (2, "")
    assert "missing.toml" in err


def test_cli_bad_netns_exit_2(edges: dict[str, Any]) -> None:
    code, _, err = run("audit", "--netns", "../x")
    assert code == 2
    assert "--netns" in err



def test_domain_from_xml_reads_port_isolation() -> None:
    from vifplug import GenericVIFDriver, load_vifs
    from vifplug.xml import tostring

    vifs = load_vifs(Path(__file__).resolve().parents[2] / "examples" / "bridge-isolated.json")
    driver = GenericVIFDriver()
    xml = (f"<domain><name>g</name><uuid>{DOM_UUID}</uuid><metadata>"
           f"{tostring(driver.metadata_xml(vifs))}</metadata><devices>"
           f"{tostring(driver.interface_xml(vifs[0]))}</devices></domain>")
    (iface,) = domain_from_xml(xml, running=True).interfaces
    assert (iface.isolated, iface.target, iface.network) == (True, "tap9a8b7c6d-5e", "red")
    assert iface.evidence()["isolated"] is True
