"""``vifplug audit`` on a real namespace and a real private OVS, against libvirt's test driver
(a node file of domains: read-only, like the real one; real QEMU guests:
tests/integration/test_audit_guests.py). Each finding kind is made on purpose:
VIFs plugged by vifplug whose guest is gone (orphan), a port re-tagged by hand (mismatch), a qbr
deleted by hand under a running guest (missing), a TAP added to OVS by hand with no marks
(foreign). Only the objects a test made are looked at: the session's OVS is shared."""

from __future__ import annotations

import io
import json
import secrets
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.functional.conftest import Env
from vifplug import GenericVIFDriver
from vifplug.cli import main
from vifplug.model import OvsVif
from vifplug.spec import METADATA_NS

pytestmark = pytest.mark.root

DRIVER = GenericVIFDriver(firewall=True)
MAP = """\
[networks.blue]
switch = "ovs"
bridge = "br-int"
vlan = 100
"""


def domain_xml(name: str, vif: OvsVif, *, running: bool = True) -> str:
    state = "" if running else "<test:runstate>5</test:runstate>"
    return f"""<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
  <name>{name}</name><uuid>{uuid.uuid4()}</uuid><memory>65536</memory>
  <os><type>hvm</type></os>{state}
  <metadata><vifplug:interfaces xmlns:vifplug="{METADATA_NS}">
    <vifplug:interface mac="{vif.mac}" network="{vif.network.name}"
                       interfaceid="{vif.ovs.interface_id}"/>
  </vifplug:interfaces></metadata>
  <devices><interface type='bridge'><mac address='{vif.mac}'/>
    <source bridge='{vif.qbr_name}'/><target dev='{vif.tap_name}'/>
    <mtu size='{vif.mtu}'/></interface></devices>
</domain>"""


class Scene:
    """Domains in a test-driver node file, the map, the lock dir: what `vifplug audit` reads."""

    def __init__(self, env: Env, tmp_path: Path) -> None:
        self.env = env
        self.dir = tmp_path
        self.domains: list[str] = []
        (tmp_path / "networks.toml").write_text(MAP)

    def plug(self, *, guest: str | None = None, running: bool = True) -> OvsVif:
        """A hybrid VIF plugged by vifplug; with ``guest``, a domain that has it (running: its
        TAP made and enslaved, as libvirt would)."""
        vif = self.env.vif("ovs-hybrid.json", filter=None)
        assert isinstance(vif, OvsVif)
        host = self.env.host("native")  # its lock files: in tmp_path / "locks"
        DRIVER.plug(vif, host, instance_uuid=str(uuid.uuid4()))
        if guest is not None:
            self.domains.append(domain_xml(guest, vif, running=running))
            if running:
                netns = self.env.netns
                netns.add_tap(vif.tap_name, mtu=vif.mtu)
                netns.ip("link", "set", "dev", vif.tap_name, "master", vif.qbr_name)
        return vif

    def audit(self, *extra: str) -> tuple[int, dict[str, Any]]:
        node = self.dir / "node.xml"
        node.write_text("<node>\n" + "\n".join(self.domains) + "\n</node>\n")
        out, err = io.StringIO(), io.StringIO()
        code = main(["audit", "--json", "--netns", self.env.netns.name,
                     "--ovsdb", self.env.ovs.db, "--connect", f"test://{node}",
                     "--networks", str(self.dir / "networks.toml"),
                     "--lock-dir", str(self.dir / "locks"), *extra], stdout=out, stderr=err)
        assert err.getvalue() == ""
        return code, json.loads(out.getvalue())


def mine(report: dict[str, Any], *names: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """The findings about ``names`` (subjects), by subject."""
    return {f["subject"]: (f["kind"], f) for f in report["findings"] if f["subject"] in names}


def vif_names(vif: OvsVif) -> tuple[str, ...]:
    return (vif.qbr_name, vif.qvb_name, vif.qvo_name, vif.tap_name, vif.mac)


def test_each_finding_kind_made_on_purpose(env: Env, tmp_path: Path) -> None:
    scene = Scene(env, tmp_path)
    alive = scene.plug(guest="alive")
    gone = scene.plug()  # its guest was destroyed (and undefined) behind vifplug's back
    cut = scene.plug(guest="cut")
    parked = scene.plug(guest="parked", running=False)  # defined, plugged, not started
    foreign = "tapf" + secrets.token_hex(4)
    env.leftovers.links.append(foreign)
    env.leftovers.ports.append(foreign)
    env.netns.add_tap(foreign)
    env.ovs.vsctl("add-port", "br-int", foreign)
    names = (*vif_names(alive), *vif_names(gone), *vif_names(cut), *vif_names(parked), foreign)

    code, report = scene.audit()
    assert {name: kind for name, (kind, _) in mine(report, *names).items()} == {
        gone.qbr_name: "orphan", gone.qvb_name: "orphan", gone.qvo_name: "orphan",
        foreign: "foreign"}
    assert code == 1

    # by hand: re-tag alive's port, delete cut's qbr
    env.ovs.vsctl("set", "Port", alive.qvo_name, "tag=200")
    env.netns.delete_link(cut.qbr_name)
    code, report = scene.audit()
    found = mine(report, *names)
    assert {name: kind for name, (kind, _) in found.items()} == {
        gone.qbr_name: "orphan", gone.qvb_name: "orphan", gone.qvo_name: "orphan",
        foreign: "foreign", alive.qvo_name: "mismatch", cut.mac: "missing"}
    # the evidence
    orphan = found[gone.qvo_name][1]
    assert orphan["evidence"]["ovs"]["external_ids"]["attached-mac"] == gone.mac
    assert orphan["evidence"]["device"]["kind"] == "veth"
    assert orphan["domain"] is None
    assert found[gone.qbr_name][1]["evidence"]["marks"][0].startswith(
        f"OVS interface {gone.qvo_name} external_ids:")
    mismatch = found[alive.qvo_name][1]
    assert mismatch["domain"]["name"] == "alive"
    assert mismatch["evidence"]["differences"] == [
        {"field": "tag", "actual": 200, "expected": 100}]
    missing = found[cut.mac][1]
    assert missing["evidence"]["absent"] == [f"bridge {cut.qbr_name}"]
    assert missing["domain"]["running"] is True
    assert found[foreign][1]["evidence"]["ovs"]["external_ids"] == {}
    locks = {lock["vif_id"] for lock in report["checked"]["locks"]}
    assert {alive.id, gone.id, cut.id, parked.id} <= locks


def gc(scene: Scene, *extra: str) -> tuple[int, str]:
    node = scene.dir / "node.xml"
    node.write_text("<node>\n" + "\n".join(scene.domains) + "\n</node>\n")
    out, err = io.StringIO(), io.StringIO()
    code = main(["gc", "--netns", scene.env.netns.name, "--ovsdb", scene.env.ovs.db,
                 "--connect", f"test://{node}", "--networks", str(scene.dir / "networks.toml"),
                 "--lock-dir", str(scene.dir / "locks"), "--state", str(scene.dir / "seen.json"),
                 *extra], stdout=out, stderr=err)
    assert err.getvalue() == ""
    return code, out.getvalue()


def test_gc_removes_exactly_the_orphans_and_repairs_the_mismatch(env: Env,
                                                                 tmp_path: Path) -> None:
    scene = Scene(env, tmp_path)
    alive = scene.plug(guest="alive")
    gone = scene.plug()
    cut = scene.plug(guest="cut")
    parked = scene.plug(guest="parked", running=False)
    foreign = "tapf" + secrets.token_hex(4)
    env.leftovers.links.append(foreign)
    env.leftovers.ports.append(foreign)
    env.netns.add_tap(foreign)
    env.ovs.vsctl("add-port", "br-int", foreign)
    env.ovs.vsctl("set", "Port", alive.qvo_name, "tag=200")
    env.netns.delete_link(cut.qbr_name)
    names = (*vif_names(alive), *vif_names(gone), *vif_names(cut), *vif_names(parked), foreign)

    before = env.snapshot()
    code, out = gc(scene, "--dry-run", "--older-than", "0")
    assert code == 0
    assert f"delete OVS port {gone.qvo_name} if it exists" in out
    assert f"ensure OVS port {alive.qvo_name} on br-int" in out
    assert out.endswith("dry run: nothing changed\n")
    assert env.snapshot() == before
    assert not (tmp_path / "seen.json").exists()

    code, out = gc(scene)  # everything was first seen just now: too young
    assert code == 0
    assert f"skip orphan {gone.qbr_name}: seen 0 s ago" in out
    assert env.snapshot() == before

    code, out = gc(scene, "--older-than", "0")
    assert code == 0, out
    assert f"skip foreign {foreign}: foreign: never touched" in out
    assert f"skip missing {cut.mac}" in out
    links = {link["ifname"] for link in env.netns.links()}
    assert not links & {gone.qbr_name, gone.qvb_name, gone.qvo_name}
    assert {foreign, alive.qbr_name, alive.qvb_name, alive.qvo_name, alive.tap_name,
            cut.qvb_name, cut.qvo_name, cut.tap_name, parked.qbr_name, parked.qvo_name} <= links
    ports = set(env.ovs.ports("br-int"))
    assert gone.qvo_name not in ports
    assert {foreign, alive.qvo_name, cut.qvo_name, parked.qvo_name} <= ports
    assert env.ovs.get("Port", alive.qvo_name, "tag") == "100"
    # the removed VIF's lock file goes with it; the others stay
    scope = f"netns-{env.netns.name}"
    assert not (tmp_path / "locks" / f"{scope}-{gone.id}.lock").exists()
    assert (tmp_path / "locks" / f"{scope}-{alive.id}.lock").exists()

    _, report = scene.audit()
    assert {name: kind for name, (kind, _) in mine(report, *names).items()} == {
        foreign: "foreign", cut.mac: "missing"}


def test_pool_holdings_against_the_domains(env: Env, tmp_path: Path) -> None:
    """The NIC pools' state file audited against a running domain (libvirt's test driver) on
    real pool NICs (veth ends in the namespace): a holding of a gone guest is an orphan, the
    running guest's unrecorded NIC a mismatch; gc fixes the file and touches no device."""
    from vifplug import pools

    nic_a, nic_b = "vpa" + secrets.token_hex(4), "vpb" + secrets.token_hex(4)
    env.leftovers.links += [nic_a, nic_b]
    env.netns.add_veth(nic_a, nic_a + "p")
    env.netns.add_veth(nic_b, nic_b + "p")
    scene = Scene(env, tmp_path)
    (tmp_path / "networks.toml").write_text(f"""\
[networks.green]
switch = "direct"
mode = "passthrough"
interfaces = ["{nic_a}", "{nic_b}"]
""")
    mac = "52:54:00:" + ":".join(secrets.token_hex(1) for _ in range(3))
    scene.domains.append(f"""<domain type='test'>
  <name>pooled</name><uuid>{uuid.uuid4()}</uuid><memory>65536</memory><os><type>hvm</type></os>
  <metadata><vifplug:interfaces xmlns:vifplug="{METADATA_NS}">
    <vifplug:interface mac="{mac}" network="green"/></vifplug:interfaces></metadata>
  <devices><interface type='direct'><mac address='{mac}'/>
    <source dev='{nic_a}' mode='passthrough'/></interface></devices>
</domain>""")
    state = tmp_path / "pools.json"
    gone = pools.Holder("gone", "52:54:00:00:00:01")
    pools.save(str(state), pools.PoolState({"green": {nic_b: [gone]}}))

    code, report = scene.audit("--pools", str(state))
    pool_findings = {f["subject"]: f["kind"] for f in report["findings"]
                     if f["subject"].startswith("pools.json:")}
    assert pool_findings == {f"pools.json:green/{nic_b}/52:54:00:00:00:01": "orphan",
                             f"pools.json:green/{nic_a}/{mac}": "mismatch"}
    assert code == 1

    before = env.snapshot()
    code, out = gc(scene, "--older-than", "0", "--pools", str(state))
    assert code == 0, out
    assert f"release pool NIC {nic_b} of network green held by gone" in out
    assert env.snapshot() == before  # no device for a pool finding
    assert pools.load(str(state)) == pools.PoolState(
        {"green": {nic_a: [pools.Holder("pooled", mac)]}})
    _, report = scene.audit("--pools", str(state))
    assert not [f for f in report["findings"] if f["subject"].startswith("pools.json:")]
