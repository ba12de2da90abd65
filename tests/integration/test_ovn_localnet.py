"""Into OVN from a Linux-bridge host, and back: a real guest keeps its MAC and its peer.

The site (tests/fixtures/sites.py, ``bridge_to_ovn``; built once for the module):

- a "physical" segment (tests/fixtures/segment.py): a netns with a Linux bridge and the *peer*,
  198.51.100.1, on it;
- host A, not in OVN: network ``red`` is the Linux bridge ``red``, uplinked by a veth into the
  segment;
- chassis B (``OvnDeployment(chassis=1)``): network ``red`` is ``switch = "ovn"``, logical switch
  ``red``, which has a ``localnet`` port on ``network_name=physnet``; B's
  ``ovn-bridge-mappings`` map ``physnet`` to the provider bridge ``br-prov``, an OVS bridge whose
  port is B's veth into the same segment. ovn-controller patches br-int to br-prov.

Each host has a private libvirtd with vifplug's hook (``vifplug hook install``) and its own
``networks.toml`` (tests/fixtures/migration.py, ``two_hosts(places=...)``). The CMS (this test,
with ``ovn-nbctl``) made the guest's logical switch port with its MAC and address.

The guest (a real Linux kernel + busybox under TCG) starts on A on bridge ``red`` with vifplug's
metadata, which remembers its port identity (``interfaceid`` = its logical switch port) though a
Linux bridge has no place for it. It pings the peer; the peer pings it every 20 ms
(tests/fixtures/pinger.py). Then it live-migrates A → B (B's hook: ``br-int`` with
``<virtualport type='openvswitch'>`` and that interfaceid; ovn-controller binds the port; QEMU's
RARP through the localnet port moves the MAC in the segment's FDB) and back B → A (A's hook:
bridge ``red`` again; B's ovn-controller releases the port). After each hop: the MAC is the same,
the SB Port_Binding is on B (or on no chassis once back on A), the peer gets replies again and
the guest gets replies from the peer again (connectivity, never a time: the number lost is
reported, not asserted), and nothing of the guest is left on the host it left.

A guest whose interface carries no port identity (its metadata made for a plain bridge VIF)
sent to B is refused by B's hook: the migration fails with the hook's line in libvirt's error
and the guest keeps running on A.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from tests.fixtures.guest import GuestImage, count_lines, guest_domain, wait_for_line
from tests.fixtures.libvirtd import minimal_domain
from tests.fixtures.migration import migrate
from tests.fixtures.ovn import OvnChassis, OvnDeployment
from tests.fixtures.pinger import Pinger
from tests.fixtures.plugin import entered
from tests.fixtures.sites import Site, add_guest_port, bridge_to_ovn
from vifplug import GenericVIFDriver, Vif, load_vifs

pytestmark = [
    pytest.mark.root,
    pytest.mark.filterwarnings("ignore:\\s*Eventlet is deprecated"),
    pytest.mark.filterwarnings("ignore:Using fork\\(\\) is a bad idea:DeprecationWarning"),
]

NETWORK = "red"
GUEST_IP = "198.51.100.31"
#: Boot (~2-4 s under TCG) plus the first replies; only bounds a failure.
GUEST_DEADLINE = 40.0
#: A migration and the first reply through the new path; only bounds a failure.
RESUME_DEADLINE = 30.0

PORT = {"id": "7d1f3a52-4b6c-4e8d-9f0a-1b2c3d4e5f60", "mac": "fa:16:3e:7d:1f:3a"}
LSP = "e3b0c442-98fc-4c14-9afb-f4c8996fb924"
#: How A plugs the port: a TAP on Linux bridge red.
(ON_A,) = load_vifs({**PORT, "vif_type": "bridge",
                     "network": {"name": NETWORK, "bridge": "red"}})
#: Its identity in the network: the logical switch port, as any OVS/OVN host plugs it. The
#: domain's vifplug metadata records this (metadata_xml of this view).
IDENTITY = load_vifs({**PORT, "vif_type": "ovs",
                      "network": {"name": NETWORK, "bridge": "br-int"},
                      "ovs": {"interface_id": LSP}})[0]


@pytest.fixture(scope="module")
def deployment(_no_leaks: None) -> Iterator[OvnDeployment]:
    """OVN with one chassis (B), for this module alone: its provider bridge and mappings
    stay in it."""
    yield from entered(OvnDeployment(chassis=1))


@pytest.fixture(scope="module")
def site(deployment: OvnDeployment, image: GuestImage) -> Iterator[Site]:
    with bridge_to_ovn(deployment) as built:
        yield built


def domain_xml(name: str, image: GuestImage, identity: Vif, console: Path) -> str:
    """The real guest on A: vifplug's ``<interface>`` for ON_A, the metadata of ``identity``."""
    driver = GenericVIFDriver()
    return guest_domain(name, image, driver.interface_xml(ON_A), ip=f"{GUEST_IP}/24",
                        peer="198.51.100.1", serial=console,
                        metadata=driver.metadata_xml([identity]))


def ping_oks(console: Path, peer: str) -> int:
    return count_lines(console.read_text(errors="replace"), f"PING-OK {peer}")


def wait_for_more(console: Path, peer: str, seen: int, *, alive: Any) -> None:
    """Until the guest's console shows more than ``seen`` replies from ``peer``."""
    wait_for_line(console, f"PING-OK {peer}", timeout=RESUME_DEADLINE, alive=alive,
                  after=seen)


def interface(dom: Any) -> etree._Element:
    (iface,) = etree.fromstring(dom.XMLDesc()).iterfind("devices/interface")
    return iface


def iface_rows(chassis: OvnChassis) -> str:
    """The names of B's OVS Interfaces that carry the guest's iface-id."""
    return chassis.ovs.vsctl("--bare", "--columns=name", "find", "Interface",
                             f"external_ids:iface-id={LSP}")


def test_guest_moves_from_linux_bridge_into_ovn_and_back(
        site: Site, image: GuestImage, tmp_path: Path, report: Callable[[str], None]) -> None:
    ovn, a, b = site.ovn, site.a, site.b
    assert ovn is not None
    (cb,) = ovn.chassis
    add_guest_port(ovn, LSP, ON_A.mac, GUEST_IP)
    name, console = "vp-lnet-guest", tmp_path / "guest.console"
    with contextlib.ExitStack() as stack:
        stack.callback(ovn.nbctl, "--if-exists", "lsp-del", LSP)
        dom = a.conn.createXML(domain_xml(name, image, IDENTITY, console), 0)

        def destroy() -> None:
            for host in (a, b):
                found = host.domain(name)
                if found is not None and found.isActive():
                    found.destroy()
        stack.callback(destroy)
        pinger = stack.enter_context(Pinger(site.peer, GUEST_IP, interval=0.02))
        pinger.wait_reply(timeout=GUEST_DEADLINE)
        wait_for_line(console, f"PING-OK {site.peer_ip}", timeout=GUEST_DEADLINE,
                      alive=dom.isActive)
        assert ovn.bound_chassis(LSP) == ""

        # A -> B. The CMS names the chassis that may bind the port (no other may claim it
        # meanwhile); nothing to activate: no chassis holds it now.
        ovn.nbctl("set", "Logical_Switch_Port", LSP, f'options:requested-chassis="{cb.name}"')
        mark, heard = pinger.mark(), ping_oks(console, site.peer_ip)
        dom = migrate(dom, a, b)
        iface = interface(dom)
        assert iface.get("type") == "bridge"
        assert iface.find("source").get("bridge") == "br-int"
        assert iface.find("virtualport/parameters").get("interfaceid") == LSP
        assert iface.find("mac").get("address") == ON_A.mac
        assert iface_rows(cb) == ON_A.tap_name
        ovn.sbctl("wait-until", "Port_Binding", LSP, f"chassis={ovn.chassis_uuid(cb)}")
        pinger.wait_reply(after=pinger.mark(), timeout=RESUME_DEADLINE)
        wait_for_more(console, site.peer_ip, heard, alive=dom.isActive)
        into_ovn = pinger.since(mark)
        assert a.domain(name) is None
        assert a.netns.link(ON_A.tap_name) is None

        # B -> A: A's hook puts it back on red; B's libvirt removes the OVS port and
        # ovn-controller releases the binding.
        mark, heard = pinger.mark(), ping_oks(console, site.peer_ip)
        dom = migrate(dom, b, a)
        iface = interface(dom)
        assert iface.get("type") == "bridge"
        assert iface.find("source").get("bridge") == "red"
        assert iface.find("virtualport") is None
        assert iface.find("mac").get("address") == ON_A.mac
        assert a.netns.link(ON_A.tap_name)["master"] == "red"
        ovn.sbctl("wait-until", "Port_Binding", LSP, "chassis=[]")
        pinger.wait_reply(after=pinger.mark(), timeout=RESUME_DEADLINE)
        wait_for_more(console, site.peer_ip, heard, alive=dom.isActive)
        out_of_ovn = pinger.since(mark)
        assert b.domain(name) is None
        assert cb.netns.link(ON_A.tap_name) is None
        assert iface_rows(cb) == ""
        ovn.nbctl("remove", "Logical_Switch_Port", LSP, "options", "requested-chassis")

    for hop, gap in (("A->B", into_ovn), ("B->A", out_of_ovn)):
        report(f"{hop}: {gap.lost} of {gap.sent} pings lost, outage {gap.outage:.3f} s")


def test_guest_without_port_identity_stays_on_the_linux_bridge_host(site: Site) -> None:
    import libvirt

    a, b = site.a, site.b
    assert site.ovn is not None
    (cb,) = site.ovn.chassis
    driver = GenericVIFDriver()
    # its metadata made for the bridge VIF: network red, no interfaceid anywhere
    xml = minimal_domain("vp-lnet-anon", [driver.interface_xml(ON_A)],
                         metadata=driver.metadata_xml([ON_A]))
    dom = a.conn.createXML(xml, 0)
    try:
        with pytest.raises(libvirt.libvirtError) as refused:
            migrate(dom, a, b)
        message = str(refused.value)
        assert f"interface {ON_A.mac}: network '{NETWORK}' is OVN logical switch " \
               f"'{NETWORK}' on this host" in message
        assert "carries no port identity" in message
        assert dom.isActive()
        assert a.netns.link(ON_A.tap_name)["master"] == "red"
        assert b.domain("vp-lnet-anon") is None
        assert cb.netns.link(ON_A.tap_name) is None
        assert ON_A.tap_name not in cb.ovs.ports("br-int")
    finally:
        dom.destroy()
