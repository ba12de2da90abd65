"""vifplug on a real OVN chassis (tests/fixtures/ovn.py: central NB/SB + ovn-northd, and a
chassis with its private OVS and ovn-controller, in namespaces). The tests play the CMS with
``ovn-nbctl``.

- hybrid and manual plugs of an ``ovs`` VIF whose interface_id is a logical switch port:
  ``wait`` returns only once ovn-controller has marked the port ``ovn-installed`` (and the SB
  binding is on this chassis);
- ``wait`` times out naming the reason: ovn-controller stopped (SIGSTOP), requested-chassis
  naming another chassis, no logical port of that name;
- ``vifplug host show`` reports the chassis and its ovn-remote.

No timed assertion: a ``timeout`` bounds a wait that must fail; a wait that must succeed gets
the default 30 s it never needs.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.ovn import OvnChassis, OvnDeployment
from tests.functional.conftest import example_data
from vifplug.cli import main as cli_main
from vifplug.driver import GenericVIFDriver
from vifplug.host import Host
from vifplug.host.errors import NotReadyError
from vifplug.loading import vifs_from_data
from vifplug.model import OvsVif

pytestmark = [pytest.mark.root]

DRIVER = GenericVIFDriver(firewall=True)
SWITCH = "ls-ovn-h"
#: A wait that must fail: long enough for ovn-controller to act had it been able to.
SHORT = 3.0


@pytest.fixture(scope="module", autouse=True)
def switch(ovn: OvnDeployment) -> str:
    ovn.nbctl("--may-exist", "ls-add", SWITCH)
    return SWITCH


@pytest.fixture
def chassis(ovn: OvnDeployment) -> OvnChassis:
    return ovn.chassis[0]


@pytest.fixture
def host(chassis: OvnChassis, tmp_path: Path) -> Iterator[Host]:
    with Host(netns=chassis.netns.name, ovsdb=chassis.ovs.db,
              lock_dir=tmp_path / "locks") as made:
        yield made


@pytest.fixture
def vifs(ovn: OvnDeployment, chassis: OvnChassis, host: Host) -> Iterator[list[OvsVif]]:
    """Append the VIFs a test plugs: unplugged, and their logical ports deleted, afterwards."""
    made: list[OvsVif] = []
    yield made
    for vif in made:
        with contextlib.suppress(Exception):
            DRIVER.unplug(vif, host)
        ovn.nbctl("--if-exists", "lsp-del", vif.ovs.interface_id)


def ovn_vif(example: str, made: list[OvsVif]) -> OvsVif:
    """An ``ovs`` VIF on br-int with no VLAN (OVN carries the network): its interface_id is the
    logical switch port's name."""
    data = example_data(example, network={"vlan": None}, filter=None)
    (vif,) = vifs_from_data(data, source=example)
    assert isinstance(vif, OvsVif)
    made.append(vif)
    return vif


def port_of(vif: OvsVif, example: str) -> str:
    return vif.qvo_name if example == "ovs-hybrid.json" else vif.tap_name


def add_port(ovn: OvnDeployment, vif: OvsVif, *options: str) -> None:
    ovn.nbctl("lsp-add", SWITCH, vif.ovs.interface_id, "--", "lsp-set-addresses",
              vif.ovs.interface_id, vif.mac)
    if options:
        ovn.nbctl("lsp-set-options", vif.ovs.interface_id, *options)
    ovn.nbctl("--wait=sb", "sync")  # northd has made its Port_Binding


@contextlib.contextmanager
def controller_stopped(chassis: OvnChassis) -> Iterator[int]:
    pid = chassis.controller_pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGCONT)


def binding_chassis(ovn: OvnDeployment, port: str) -> str:
    uuid = ovn.sbctl("--bare", "--columns=chassis", "find", "Port_Binding",
                     f"logical_port={port}")
    return ovn.sbctl("--bare", "--columns=name", "list", "Chassis", uuid) if uuid else ""


@pytest.mark.parametrize("example", ["ovs-hybrid.json", "ovs-manual.json"])
def test_wait_returns_once_ovn_controller_installed_the_port(
        example: str, ovn: OvnDeployment, chassis: OvnChassis, host: Host,
        vifs: list[OvsVif]) -> None:
    vif = ovn_vif(example, vifs)
    add_port(ovn, vif)
    port = port_of(vif, example)
    # ovn-controller stopped: plug commits, but the port is not installed, so wait cannot end
    with controller_stopped(chassis) as pid:
        DRIVER.plug(vif, host, wait=False)
        with pytest.raises(NotReadyError) as caught:
            DRIVER.wait([vif], host, timeout=SHORT)
        assert chassis.ovs.get("Interface", port, "external_ids:ovn-installed") == ""
        assert f"ovn-controller (pid {pid}) is stopped" in str(caught.value)
    # resumed: it binds the port and installs its flows; wait returns only after that
    states = DRIVER.wait([vif], host)
    assert [state.ready for state in states] == [True]
    assert chassis.ovs.get("Interface", port, "external_ids:ovn-installed") == "true"
    assert chassis.ovs.get("Interface", port, "external_ids:iface-id") == vif.ovs.interface_id
    assert states[0].details[port]["ovs"]["ovn_installed"] is True
    assert binding_chassis(ovn, vif.ovs.interface_id) == chassis.name
    if example == "ovs-manual.json":  # the TAP pre-created before any QEMU, with its MTU
        link = chassis.netns.link(vif.tap_name)
        assert link is not None
        assert link["mtu"] == vif.mtu
    # a second plug is a no-op that is ready at once
    assert [s.ready for s in DRIVER.wait([vif], host)] == [True]


def test_plug_waits_by_default_until_installed(
        ovn: OvnDeployment, chassis: OvnChassis, host: Host,
        vifs: list[OvsVif]) -> None:
    vif = ovn_vif("ovs-manual.json", vifs)
    add_port(ovn, vif)
    DRIVER.plug(vif, host)  # waits
    assert chassis.ovs.get("Interface", vif.tap_name, "external_ids:ovn-installed") == "true"


def test_wait_names_requested_chassis_of_another_chassis(
        ovn: OvnDeployment, chassis: OvnChassis, host: Host,
        vifs: list[OvsVif]) -> None:
    vif = ovn_vif("ovs-hybrid.json", vifs)
    add_port(ovn, vif, "requested-chassis=chassis-elsewhere")
    DRIVER.plug(vif, host, wait=False)
    with pytest.raises(NotReadyError) as caught:
        DRIVER.wait([vif], host, timeout=SHORT)
    message = str(caught.value)
    assert "requested-chassis names another chassis (chassis-elsewhere)" in message
    assert chassis.name in message
    # the CMS moves the port here: it becomes ready
    ovn.nbctl("lsp-set-options", vif.ovs.interface_id, f"requested-chassis={chassis.name}")
    assert [s.ready for s in DRIVER.wait([vif], host)] == [True]


def test_wait_names_a_missing_logical_port(
        ovn: OvnDeployment, chassis: OvnChassis, host: Host,
        vifs: list[OvsVif]) -> None:
    vif = ovn_vif("ovs-manual.json", vifs)  # no lsp-add
    DRIVER.plug(vif, host, wait=False)
    with pytest.raises(NotReadyError) as caught:
        DRIVER.wait([vif], host, timeout=SHORT)
    assert (f"no logical port {vif.ovs.interface_id!r} is claimed by this chassis "
            f"({chassis.name})") in str(caught.value)
    # the CMS creates it late: the same wait now succeeds
    add_port(ovn, vif)
    assert [s.ready for s in DRIVER.wait([vif], host)] == [True]


def test_wait_names_a_dead_controller(tmp_path: Path) -> None:
    """ovn-controller gone (its own deployment, so the session's stays intact)."""
    with OvnDeployment(chassis=1) as own:
        chassis = own.chassis[0]
        own.nbctl("ls-add", SWITCH)
        made: list[OvsVif] = []
        vif = ovn_vif("ovs-manual.json", made)
        add_port(own, vif)
        pid = chassis.controller_pid
        assert pid is not None
        chassis.netns.run("ovn-appctl", "-t", f"{chassis.rundir}/ovn-controller.{pid}.ctl",
                          "exit")
        with Host(netns=chassis.netns.name, ovsdb=chassis.ovs.db,
                  lock_dir=tmp_path / "locks") as host:
            DRIVER.plug(vif, host, wait=False)
            with pytest.raises(NotReadyError) as caught:
                DRIVER.wait([vif], host, timeout=SHORT)
            assert "ovn-controller is not running" in str(caught.value)
            DRIVER.unplug(vif, host)


def test_host_show_reports_the_chassis(ovn: OvnDeployment, chassis: OvnChassis,
                                       tmp_path: Path) -> None:
    networks = tmp_path / "networks.toml"
    networks.write_text(f'[networks.blue]\nswitch = "ovn"\nlogical_switch = "{SWITCH}"\n')
    out = io.StringIO()
    code = cli_main(["host", "show", "--networks", str(networks), "--netns", chassis.netns.name,
                     "--ovsdb", chassis.ovs.db], stdout=out)
    text = out.getvalue()
    assert code == 0, text
    assert f"OVN logical switch {SWITCH} on br-int  [present]" in text
    assert (f"OVN chassis: system-id {chassis.name}, ovn-remote {ovn.sb}, encap geneve "
            f"{chassis.encap_ip}, bridge br-int") in text
    assert f"ovn-remote: reachable ({ovn.sb} accepts connections)" in text
    assert f"chassis: registered (registered as chassis '{chassis.name}'" in text


def test_host_show_reports_an_unreachable_remote_and_no_chassis(
        chassis: OvnChassis, tmp_path: Path) -> None:
    """The same host's OVSDB, told of a remote nobody serves and without a system-id: a
    private OVS of its own would do, but the chassis's is at hand; restored afterwards."""
    networks = tmp_path / "networks.toml"
    networks.write_text('[networks.blue]\nswitch = "ovn"\n')
    ovs = chassis.ovs
    saved = {key: ovs.get("Open_vSwitch", ".", f"external_ids:{key}")
             for key in ("ovn-remote", "system-id")}
    dead = f"unix:{tmp_path}/nobody.sock"
    # ovn-controller would re-register under a new remote: keep it stopped meanwhile
    with controller_stopped(chassis):
        ovs.vsctl("set", "Open_vSwitch", ".", f"external_ids:ovn-remote={dead}", "--",
                  "remove", "Open_vSwitch", ".", "external_ids", "system-id")
        try:
            out = io.StringIO()
            cli_main(["host", "show", "--networks", str(networks), "--netns",
                      chassis.netns.name, "--ovsdb", ovs.db], stdout=out)
        finally:
            ovs.vsctl("set", "Open_vSwitch", ".",
                      *(f"external_ids:{key}={value}" for key, value in saved.items()))
    text = out.getvalue()
    assert "NOT a chassis: the Open_vSwitch row lacks external_ids:system-id" in text
    assert f"ovn-remote: UNREACHABLE ({dead}: " in text
