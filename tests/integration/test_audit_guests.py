"""``vifplug audit`` and ``gc`` with real QEMU guests on the private libvirtd (read-only
connection), VIFs plugged by vifplug (hybrid path, access VLAN 100 on br-int), each finding kind
made on purpose: a guest destroyed behind vifplug's back (orphan), its qbr deleted by hand under
a running guest (missing), a port re-tagged by hand (mismatch), an OVS port with no marks
(foreign). Then ``gc`` removes exactly the orphans and re-tags the mismatch, leaves the foreign
port, and the running guests keep their QEMU, TAP and port throughout (stand-in guests: diskless
QEMU, no guest OS; traffic through gc: tests/functional/test_gc_traffic.py)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.libvirtd import minimal_domain
from tests.fixtures.vm import VmHost, qemu_tun_fds
from vifplug import GenericVIFDriver, Vif, load_vifs
from vifplug.cli import main
from vifplug.host import Host

pytestmark = [
    pytest.mark.root,
    pytest.mark.filterwarnings("ignore:\\s*Eventlet is deprecated"),
    pytest.mark.filterwarnings("ignore:Using fork\\(\\) is a bad idea:DeprecationWarning"),
]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MAP = """\
[networks.blue]
switch = "ovs"
bridge = "br-int"
vlan = 100
"""


def hybrid_vif() -> Vif:
    data: dict[str, Any] = json.loads((EXAMPLES / "ovs-hybrid.json").read_text())
    del data["filter"]  # nwfilter's clean-traffic is not defined on the private libvirtd
    data["id"] = str(uuid.uuid4())
    tail = uuid.uuid4().hex
    data["mac"] = "fa:16:3e:" + ":".join(tail[i:i + 2] for i in (0, 2, 4))
    data["ovs"]["interface_id"] = str(uuid.uuid4())
    (vif,) = load_vifs(data)
    return vif


class Guests:
    """Guests started (transient, auto-destroyed) with vifplug's interface and metadata."""

    def __init__(self, host: VmHost, plug_host: Host, tmp_path: Path) -> None:
        self.host, self.plug_host, self.dir = host, plug_host, tmp_path
        self.driver = GenericVIFDriver(conn=host.conn)
        self.vifs: list[Vif] = []
        self.doms: list[Any] = []
        self.extra: list[str] = []
        (tmp_path / "networks.toml").write_text(MAP)

    def start(self) -> tuple[Vif, Any]:
        import libvirt
        from lxml import etree

        vif = hybrid_vif()
        self.vifs.append(vif)
        instance = str(uuid.uuid4())
        self.driver.plug(vif, self.plug_host, instance_uuid=instance)
        name = f"vp-audit-{os.getpid()}-{len(self.vifs)}"
        xml = minimal_domain(name, [self.driver.interface_xml(vif)], kvm=self.host.kvm,
                             metadata=self.driver.metadata_xml([vif]))
        domain = etree.fromstring(xml)
        uuid_el = etree.Element("uuid")
        uuid_el.text = instance
        domain.insert(1, uuid_el)
        dom = self.host.conn.createXML(etree.tostring(domain, encoding="unicode"),
                                       libvirt.VIR_DOMAIN_START_AUTODESTROY)
        self.doms.append(dom)
        return vif, dom

    def run(self, *argv: str) -> tuple[int, str]:
        out, err = io.StringIO(), io.StringIO()
        code = main([*argv, "--netns", self.host.netns.name, "--ovsdb", self.host.ovs.db,
                     "--connect", self.host.libvirtd.uri,
                     "--networks", str(self.dir / "networks.toml"),
                     "--lock-dir", str(self.plug_host.lock_dir)], stdout=out, stderr=err)
        assert err.getvalue() == "", err.getvalue()
        return code, out.getvalue()

    def cleanup(self) -> None:
        for dom in self.doms:
            with contextlib.suppress(Exception):
                if dom.isActive():
                    dom.destroy()
        with contextlib.suppress(Exception):
            self.driver.unplug_many(self.vifs, self.plug_host)
        netns = self.host.netns
        for name in self.extra + [n for vif in self.vifs
                                  for n in (vif.qbr_name, vif.qvb_name, vif.tap_name)]:
            self.host.ovs.vsctl("--if-exists", "del-port", name, check=False)
            if netns.link(name) is not None:
                netns.ip("link", "delete", "dev", name, check=False)


@pytest.fixture
def guests(host: VmHost, tmp_path: Path) -> Iterator[Guests]:
    with Host(netns=host.netns.name, ovsdb=host.ovs.db, lock_dir=tmp_path / "locks") as plug:
        found = Guests(host, plug, tmp_path)
        try:
            yield found
        finally:
            found.cleanup()


def test_audit_and_gc_with_real_guests(guests: Guests, host: VmHost) -> None:
    alive, alive_dom = guests.start()
    gone, gone_dom = guests.start()
    cut, cut_dom = guests.start()
    gone_dom.destroy()  # transient: the domain is gone; vifplug was not told
    host.ovs.vsctl("set", "Port", alive.qvo_name, "tag=200")
    host.netns.ip("link", "delete", "dev", cut.qbr_name)
    foreign = "tapf" + secrets.token_hex(4)
    guests.extra.append(foreign)
    host.netns.add_tap(foreign)
    host.ovs.vsctl("add-port", "br-int", foreign)
    names = {alive.qbr_name, alive.qvb_name, alive.qvo_name, alive.tap_name, alive.mac,
             gone.qbr_name, gone.qvb_name, gone.qvo_name, gone.tap_name, gone.mac,
             cut.qbr_name, cut.qvb_name, cut.qvo_name, cut.tap_name, cut.mac, foreign}

    code, out = guests.run("audit", "--json")
    report = json.loads(out)
    found = {f["subject"]: f for f in report["findings"] if f["subject"] in names}
    assert {name: f["kind"] for name, f in found.items()} == {
        gone.qbr_name: "orphan", gone.qvb_name: "orphan", gone.qvo_name: "orphan",
        alive.qvo_name: "mismatch", cut.mac: "missing", foreign: "foreign"}
    assert code == 1
    assert found[gone.qvo_name]["evidence"]["ovs"]["external_ids"]["attached-mac"] == gone.mac
    assert found[alive.qvo_name]["evidence"]["differences"] == [
        {"field": "tag", "actual": 200, "expected": 100}]
    assert found[alive.qvo_name]["domain"]["uuid"] == alive_dom.UUIDString()
    assert found[cut.mac]["evidence"]["absent"] == [f"bridge {cut.qbr_name}"]

    pids = {vif.tap_name: host.libvirtd.qemu_pid(dom.name())
            for vif, dom in ((alive, alive_dom), (cut, cut_dom))}
    code, out = guests.run("gc", "--older-than", "0", "--state", str(guests.dir / "seen"))
    assert code == 0, out
    links = {link["ifname"]: link for link in host.netns.links()}
    assert not set(links) & {gone.qbr_name, gone.qvb_name, gone.qvo_name}
    assert gone.qvo_name not in host.ovs.ports("br-int")
    assert host.ovs.get("Port", alive.qvo_name, "tag") == "100"
    assert foreign in links
    assert foreign in host.ovs.ports("br-int")
    # the running guests kept their QEMU, TAP (on its qbr) and port
    assert alive_dom.isActive()
    assert cut_dom.isActive()
    assert links[alive.tap_name]["master"] == alive.qbr_name
    for tap, pid in pids.items():
        assert pid is not None
        assert tap in qemu_tun_fds(pid)
    assert {alive.qvo_name, cut.qvo_name} <= set(host.ovs.ports("br-int"))

    code, out = guests.run("audit", "--json")
    report = json.loads(out)
    assert {f["subject"]: f["kind"] for f in report["findings"] if f["subject"] in names} == {
        cut.mac: "missing", foreign: "foreign"}
