"""A real guest live-migrates between two OVN chassis and back while another real guest pings it.

An OVN deployment with two chassis (tests/fixtures/ovn.py); on each chassis's netns and OVS a
private libvirtd with vifplug's hook installed by ``vifplug hook install``
(tests/fixtures/migration.py, ``two_hosts(places=...)``), both maps saying network ``blue`` is
``switch = "ovn"``. The test plays the CMS with ``ovn-nbctl``: logical switch ``blue`` with two
logical ports.

- the *peer* guest runs on chassis B and pings the mover forever;
- the *mover* starts on chassis A with ``<virtualport type='openvswitch'>`` (interfaceid = its
  logical switch port; vifplug's ``virtualport`` method: libvirt adds and removes the OVS port
  itself as the guest arrives and leaves) and vifplug's metadata (network ``blue``).

Each migration (A → B, then B → A) is the CMS sequence of docs/src/ovn.md: before it,
``requested-chassis="<source>,<destination>"`` and ``activation-strategy=rarp``; the live
migration (the destination's hook rewrites the incoming XML for its ``ovn`` network); after it,
``requested-chassis="<destination>"``. Then: the SB Port_Binding's chassis is the destination,
the peer, which pings the mover every 20 ms (busybox ``ping -i 0.02``, each reply with its
sequence number on its console), gets replies again (connectivity only; the number lost on
each hop is reported as a test property, never asserted), and nothing of the mover is left on
the source (no domain, no TAP in the kernel, no OVS port with its iface-id).

No timed assertion: every wait is bounded only so a failure ends.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from tests.fixtures.guest import GuestImage, guest_domain
from tests.fixtures.migration import MigrationHost, migrate, two_hosts
from tests.fixtures.ovn import OvnChassis, OvnDeployment
from tests.fixtures.pinger import ConsolePings
from vifplug import GenericVIFDriver, load_vifs
from vifplug.model import OvsVif

pytestmark = [
    pytest.mark.root,
    pytest.mark.filterwarnings("ignore:\\s*Eventlet is deprecated"),
    pytest.mark.filterwarnings("ignore:Using fork\\(\\) is a bad idea:DeprecationWarning"),
]

SWITCH = "blue"
NETWORKS = f"""\
[networks.{SWITCH}]
switch = "ovn"
"""
SUBNET = "198.51.100"
MOVER_IP, PEER_IP = f"{SUBNET}.21", f"{SUBNET}.22"
MTU = 1400  # Geneve's 58 bytes on the 1500-byte underlay
#: Boot (~2-4 s under TCG) plus the first replies; only bounds a failure.
GUEST_DEADLINE = 40.0
#: A migration, OVN moving the binding and the first reply through the new path.
RESUME_DEADLINE = 30.0
#: The peer guest pings the mover this often (seconds).
PING_EVERY = 0.02


def ovn_vif(index: int) -> OvsVif:
    """An ``ovs`` VIF on br-int plugged by libvirt (``virtualport``); its interface_id is the
    logical switch port's name."""
    (vif,) = load_vifs({
        "id": str(uuid.uuid4()), "vif_type": "ovs", "mac": f"fa:16:3e:00:0a:{index + 10:02x}",
        "mtu": MTU, "network": {"name": SWITCH, "bridge": "br-int"},
        "ovs": {"interface_id": str(uuid.uuid4())}})
    assert isinstance(vif, OvsVif)
    return vif


def domain_xml(name: str, image: GuestImage, vif: OvsVif, *, ip: str, peer: str,
               serial: Path, every: float | None = None) -> str:
    """A real guest with the ``<interface>`` vifplug renders for ``vif`` and vifplug's
    ``<metadata>`` (network and interfaceid: what the destination's hook maps)."""
    driver = GenericVIFDriver()
    assert driver.select(vif).name == "ovs-virtualport"
    return guest_domain(name, image, driver.interface_xml(vif), ip=f"{ip}/24", peer=peer,
                        serial=serial, metadata=driver.metadata_xml([vif]), every=every)


def assert_nothing_left(host: MigrationHost, chassis: OvnChassis, name: str,
                        vif: OvsVif) -> None:
    """No domain, no TAP in the kernel, no OVS port (nor any Interface with the iface-id)."""
    assert host.domain(name) is None
    assert chassis.netns.link(vif.tap_name) is None
    assert vif.tap_name not in chassis.ovs.ports("br-int")
    assert chassis.ovs.vsctl("--bare", "--columns=name", "find", "Interface",
                             f"external_ids:iface-id={vif.ovs.interface_id}") == ""


def test_live_migration_between_chassis_keeps_the_peer_pinging(
        ovn2: OvnDeployment, image: GuestImage, tmp_path: Path,
        report: Callable[[str], None]) -> None:
    import libvirt

    ovn = ovn2
    ca, cb = ovn.chassis
    # the underlay's ARP for the tunnel peer: else the first tunnelled packets are lost
    ca.netns.run("ping", "-c1", "-W2", cb.encap_ip)
    cb.netns.run("ping", "-c1", "-W2", ca.encap_ip)

    mover, peer = ovn_vif(0), ovn_vif(1)
    lsp = mover.ovs.interface_id
    ovn.nbctl("--may-exist", "ls-add", SWITCH)
    with contextlib.ExitStack() as stack:
        for vif, ip in ((mover, MOVER_IP), (peer, PEER_IP)):
            port = vif.ovs.interface_id
            ovn.nbctl("lsp-add", SWITCH, port, "--", "lsp-set-addresses", port,
                      f"{vif.mac} {ip}")
            stack.callback(ovn.nbctl, "--if-exists", "lsp-del", port)
        ovn.nbctl("--wait=sb", "sync")

        a, b = stack.enter_context(two_hosts(
            NETWORKS, NETWORKS, places=[(ca.netns, ca.ovs), (cb.netns, cb.ovs)]))
        where = {a.name: ca, b.name: cb}

        mover_console, peer_console = tmp_path / "mover.console", tmp_path / "peer.console"
        peer_dom = b.conn.createXML(domain_xml("vp-ovnmig-peer", image, peer, ip=PEER_IP,
                                               peer=MOVER_IP, serial=peer_console,
                                               every=PING_EVERY), 0)
        stack.callback(lambda: peer_dom.isActive() and peer_dom.destroy())
        name = "vp-ovnmig-mover"
        dom = a.conn.createXML(domain_xml(name, image, mover, ip=MOVER_IP, peer=PEER_IP,
                                          serial=mover_console), 0)  # not AUTODESTROY

        def destroy_mover() -> None:
            for host in (a, b):
                found = host.domain(name)
                if found is not None and found.isActive():
                    found.destroy()
        stack.callback(destroy_mover)

        assert ovn.bound_chassis(lsp) == ca.name
        pings = ConsolePings(peer_console, MOVER_IP, interval=PING_EVERY)
        pings.wait_reply(after=-1, timeout=GUEST_DEADLINE, alive=peer_dom.isActive)
        lost = {}

        for source, destination in ((a, b), (b, a)):
            src, dst = where[source.name], where[destination.name]
            # the CMS, before: both chassis may bind the port; the destination's binding
            # is activated by the guest's RARP once it runs there
            ovn.nbctl("set", "Logical_Switch_Port", lsp,
                      f'options:requested-chassis="{src.name},{dst.name}"',
                      "options:activation-strategy=rarp")

            mark = pings.mark()
            dom = migrate(dom, source, destination)
            assert dom.isActive()
            state, _reason = dom.state()
            assert state == libvirt.VIR_DOMAIN_RUNNING
            (iface,) = etree.fromstring(dom.XMLDesc()).iterfind("devices/interface")
            assert iface.find("source").get("bridge") == "br-int"
            assert iface.find("virtualport/parameters").get("interfaceid") == lsp
            assert dst.ovs.get("Interface", mover.tap_name, "external_ids:iface-id") == lsp

            # the guest's RARP (QEMU announces it once it runs on the destination) activated
            # the destination's binding: ovn-controller there recorded it in the SB
            ovn.sbctl("wait-until", "Port_Binding", lsp,
                      f"options:additional-chassis-activated={dst.name}")

            # the CMS, after: the destination only
            ovn.nbctl("set", "Logical_Switch_Port", lsp,
                      f'options:requested-chassis="{dst.name}"')
            ovn.sbctl("wait-until", "Port_Binding", lsp,
                      f"chassis={ovn.chassis_uuid(dst)}")  # bounded by --timeout=20
            assert ovn.bound_chassis(lsp) == dst.name

            # ping resumes: a reply the peer gets from now on took the new path
            pings.wait_reply(timeout=RESUME_DEADLINE, alive=peer_dom.isActive)
            lost[f"{src.name}->{dst.name}"] = pings.since(mark)
            assert_nothing_left(source, src, name, mover)

    for hop, gap in lost.items():  # reported, never asserted: a time depends on the machine
        report(f"{hop}: {gap.lost} of {gap.sent} pings lost (every {PING_EVERY} s)")
