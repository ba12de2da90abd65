"""Two real Linux guests on two OVN chassis ping each other across Geneve, plugged by vifplug.

An OVN deployment with two chassis (tests/fixtures/ovn.py), a private libvirtd in each
chassis's netns bound to that chassis's OVS. The test plays the CMS: logical switch ``blue``
with two logical ports (``lsp-set-addresses "MAC IP"``). vifplug plugs one ``ovs`` VIF per
chassis, once per plug method: ``manual`` (vifplug pre-creates the TAP and its br-int port with
``iface-id`` = the logical port; libvirt gets ``type='ethernet' managed='no'``), ``hybrid``
(qbr + veth, the qvo end on br-int) and ``virtualport`` (libvirt adds the port itself as the
guest starts). ``GenericVIFDriver.wait`` returns once ovn-controller has set ``ovn-installed``
(before the guest starts; for virtualport after, with ``started=True``). A real guest
(tests/fixtures/guest.py) boots on each chassis with the ``<interface>`` vifplug rendered and
pings the other; each guest's serial console must show ``PING-OK <peer>``: a reply came back
through both chassis's br-int and the Geneve tunnel between them.

No timed assertion: the waits for the console lines are bounded only so a failure ends.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures._proc import run
from tests.fixtures.guest import GuestImage, guest_domain, wait_for_line
from tests.fixtures.libvirtd import PrivateLibvirtd
from tests.fixtures.ovn import OvnDeployment
from vifplug import GenericVIFDriver, load_vifs
from vifplug.host import Host
from vifplug.model import OvsVif

pytestmark = [
    pytest.mark.root,
    pytest.mark.filterwarnings("ignore:\\s*Eventlet is deprecated"),
    pytest.mark.filterwarnings("ignore:Using fork\\(\\) is a bad idea:DeprecationWarning"),
]

SWITCH = "blue"
SUBNET = "198.51.100"
#: Geneve adds 58 bytes on the 1500-byte underlay (ENVIRONMENT.md, "OVN").
MTU = 1400
#: Boot (~2-4 s under TCG) plus the first replies; only bounds a failure.
GUEST_DEADLINE = 40.0


#: vif.json "plug" per method (virtualport: none, libvirt adds the OVS port itself).
METHODS = {"ovs-manual": "manual", "ovs-hybrid": "hybrid", "ovs-virtualport": None}


def ovn_vif(method: str, index: int) -> OvsVif:
    """An ``ovs`` VIF on br-int plugged by ``method``, no VLAN (OVN carries the network), one
    queue; its interface_id (a UUID, as vifplug requires) is the logical switch port's name."""
    mac = f"fa:16:3e:00:{list(METHODS).index(method) + 1:02x}:{index + 10:02x}"
    data: dict[str, Any] = {
        "id": str(uuid.uuid4()), "vif_type": "ovs", "mac": mac, "mtu": MTU,
        "network": {"name": SWITCH, "bridge": "br-int"},
        "ovs": {"interface_id": str(uuid.uuid4())}}  # the LSP's name, a UUID as Neutron's
    if METHODS[method] is not None:
        data["plug"] = METHODS[method]
    (vif,) = load_vifs(data)
    assert isinstance(vif, OvsVif)
    return vif


def ovs_port(method: str, vif: OvsVif) -> str:
    """The br-int port that carries the guest: the veth end for hybrid, else the TAP."""
    return vif.qvo_name if method == "ovs-hybrid" else vif.tap_name


@pytest.mark.parametrize("method", list(METHODS))
def test_two_guests_on_two_chassis_ping_across_geneve(
        method: str, ovn2: OvnDeployment, image: GuestImage, tmp_path: Path) -> None:
    import libvirt

    ovn = ovn2
    a, b = ovn.chassis
    # the underlay's ARP for the tunnel peer: else the first tunnelled packets are lost
    a.netns.run("ping", "-c1", "-W2", b.encap_ip)
    b.netns.run("ping", "-c1", "-W2", a.encap_ip)

    vifs = [ovn_vif(method, 0), ovn_vif(method, 1)]
    ips = [f"{SUBNET}.{i + 1}" for i in range(2)]
    ovn.nbctl("--may-exist", "ls-add", SWITCH)
    with contextlib.ExitStack() as stack:
        for vif, ip in zip(vifs, ips, strict=True):
            port = vif.ovs.interface_id
            ovn.nbctl("lsp-add", SWITCH, port, "--", "lsp-set-addresses", port,
                      f"{vif.mac} {ip}")
            stack.callback(ovn.nbctl, "--if-exists", "lsp-del", port)
        ovn.nbctl("--wait=sb", "sync")  # northd made the Port_Bindings

        hosts: list[Host] = []
        conns: list[Any] = []
        for chassis in (a, b):
            libvirtd = stack.enter_context(PrivateLibvirtd(chassis.netns, chassis.ovs))
            conn = libvirt.open(libvirtd.uri)
            stack.callback(conn.close)
            conns.append(conn)
            hosts.append(stack.enter_context(Host(
                netns=chassis.netns.name, ovsdb=chassis.ovs.db,
                lock_dir=tmp_path / f"locks-{chassis.name}")))

        drivers = [GenericVIFDriver(conn=conn) for conn in conns]
        doms = []
        consoles = [tmp_path / f"guest-{i}.console" for i in range(2)]
        for i, (vif, host, driver) in enumerate(zip(vifs, hosts, drivers, strict=True)):
            assert driver.select(vif).name == method
            instance = str(uuid.uuid4())
            driver.plug(vif, host, instance_uuid=instance, wait=False)
            stack.callback(driver.unplug, vif, host)  # after the guest is destroyed (LIFO)
            if method != "ovs-virtualport":  # the port exists before the guest: wait now
                states = driver.wait([vif], host)
            xml = guest_domain(f"vp-ovn-guest-{i}", image, driver.interface_xml(vif),
                               ip=f"{ips[i]}/24", peer=ips[1 - i], serial=consoles[i])
            dom = conns[i].createXML(xml, libvirt.VIR_DOMAIN_START_AUTODESTROY)
            stack.callback(lambda d=dom: d.isActive() and d.destroy())
            doms.append(dom)
            if method == "ovs-virtualport":  # libvirt added the port as it started the guest
                states = driver.wait([vif], host, started=True)
            # wait returned: ovn-controller has installed the port
            assert [state.ready for state in states] == [True]
            assert (ovn.chassis[i].ovs.get("Interface", ovs_port(method, vif),
                                           "external_ids:ovn-installed") == "true")

        # each guest's port is bound to its own chassis, so the pings cross the tunnel
        for vif, chassis in zip(vifs, (a, b), strict=True):
            uuid_ = ovn.sbctl("--bare", "--columns=chassis", "find", "Port_Binding",
                              f"logical_port={vif.ovs.interface_id}")
            assert ovn.sbctl("--bare", "--columns=name", "list", "Chassis", uuid_) \
                == chassis.name

        for i, dom in enumerate(doms):
            text = wait_for_line(consoles[i], f"PING-OK {ips[1 - i]}",
                                 timeout=GUEST_DEADLINE, alive=dom.isActive)
            assert f"VP-READY {ips[i]}/24" in text  # the guest's /init set its address
        # and the pings went through the Geneve tunnel: each chassis's tunnel port sent and
        # received packets (asked of ovs-vswitchd itself: the OVSDB statistics column lags
        # by up to 5 s)
        for chassis in (a, b):
            (tunnel,) = chassis.ovs.vsctl("--bare", "--columns=name", "find", "Interface",
                                          "type=geneve").split()
            ofport = chassis.ovs.get("Interface", tunnel, "ofport")
            dump = run(["ovs-ofctl", "dump-ports", f"unix:{chassis.rundir}/br-int.mgmt",
                        ofport]).stdout
            counts = dict(re.findall(r"(rx|tx) pkts=(\d+)", dump))
            assert int(counts["tx"]) > 0, (chassis.name, dump)
            assert int(counts["rx"]) > 0, (chassis.name, dump)
