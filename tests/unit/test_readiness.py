"""Readiness without root: what each connection waits for, and how the host's state reads, on
the in-memory netlink and OVSDB (tests/functional/test_ready.py proves it on a real kernel and
OVS)."""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import EXAMPLES

from vifplug import GenericVIFDriver, load_vifs
from vifplug.host import Host
from vifplug.host.errors import NotReadyError
from vifplug.host.fake import FakeNetlink, FakeOvsdb
from vifplug.ready import LinkReady, OvsPortReady

DRIVER = GenericVIFDriver(firewall=True)


def vif(example: str, **changes: Any) -> Any:
    data = json.loads((EXAMPLES / example).read_text())
    return load_vifs({**data, **changes})[0]


@pytest.fixture
def fakes(tmp_path: Path) -> tuple[Host, FakeNetlink, FakeOvsdb]:
    netlink, ovsdb = FakeNetlink(), FakeOvsdb()
    return Host.using(netlink, ovsdb, lock_dir=tmp_path), netlink, ovsdb


@pytest.mark.parametrize(("example", "plain", "started"), [
    ("bridge.json", ["red up"], ["red up", "tap0f6d3c1e-5b up and forwarding on red"]),
    ("ovs-hybrid.json",
     ["qbr0f6d3c1e-5b up", "qvb0f6d3c1e-5b up and forwarding on qbr0f6d3c1e-5b",
      "qvo0f6d3c1e-5b up", "OVS port qvo0f6d3c1e-5b has an OpenFlow port"],
     ["qbr0f6d3c1e-5b up", "qvb0f6d3c1e-5b up and forwarding on qbr0f6d3c1e-5b",
      "qvo0f6d3c1e-5b up", "OVS port qvo0f6d3c1e-5b has an OpenFlow port",
      "tap0f6d3c1e-5b up and forwarding on qbr0f6d3c1e-5b"]),
    ("ovs-virtualport.json", [], ["OVS port tap0f6d3c1e-5b has an OpenFlow port"]),
    ("ovs-manual.json", ["tap0f6d3c1e-5b up", "OVS port tap0f6d3c1e-5b has an OpenFlow port"],
     ["tap0f6d3c1e-5b up", "OVS port tap0f6d3c1e-5b has an OpenFlow port"]),
    ("ethernet.json", ["tap2b3c4d5e-6f up"], ["tap2b3c4d5e-6f up"]),
    ("vhostuser.json", ["OVS port vhu3c4d5e6f-7a has an OpenFlow port"],
     ["OVS port vhu3c4d5e6f-7a has an OpenFlow port"]),
    ("direct.json", [], []),
    ("802.1qbg.json", [], []),
    ("hostdev.json", [], []),
    ("vdpa.json", [], []),
    ("bridge-isolated.json", ["red up"],
     ["red up", "tap9a8b7c6d-5e up and forwarding on red, isolated"]),
])
def test_what_each_connection_waits_for(example: str, plain: list[str],
                                        started: list[str]) -> None:
    one = vif(example)
    connection = GenericVIFDriver().select(one)  # no firewall: virtualport stays virtualport
    assert [c.describe() for c in connection.ready(one)] == plain
    assert [c.describe() for c in connection.ready(one, started=True)] == started


def test_a_plugged_ovs_vif_is_ready_once_vswitchd_applied_it(
        fakes: tuple[Host, FakeNetlink, FakeOvsdb]) -> None:
    host, _, ovsdb = fakes
    hybrid = vif("ovs-hybrid.json")
    ovsdb.vswitchd_running = False
    outcome = DRIVER.plug(hybrid, host, wait=False)
    assert outcome.ovs_cfg == ovsdb.next_cfg == 1
    [state] = DRIVER.readiness([hybrid], host)
    assert not state.ready
    assert state.reasons == (
        "OVS port qvo0f6d3c1e-5b has no OpenFlow port yet (ofport unset)",
        "ovs-vswitchd has not applied configuration 1 yet (it is at 0): is ovs-vswitchd "
        "running?")
    with pytest.raises(NotReadyError) as raised:
        DRIVER.wait([hybrid], host, timeout=5)  # the fake cannot change: no wait at all
    assert str(raised.value).splitlines() == [
        "1 of 1 VIF(s) not ready after 5 s (what was plugged stays: wait again, or unplug):",
        f"  {hybrid.id}: " + "; ".join(state.reasons)]
    ovsdb.apply_config()
    [state] = DRIVER.wait([hybrid], host)
    assert state.ready
    assert state.to_dict() == {
        "id": hybrid.id, "ready": True, "reasons": [],
        "conditions": [c.describe() for c in state.conditions],
        "devices": {
            "qbr0f6d3c1e-5b": {"link": {"up": True}},
            "qvb0f6d3c1e-5b": {"link": {"up": True, "master": "qbr0f6d3c1e-5b",
                                        "port_state": "forwarding"}},
            "qvo0f6d3c1e-5b": {"link": {"up": True},
                               "ovs": {"ofport": ovsdb.ofports["qvo0f6d3c1e-5b"],
                                       "error": None, "ovn_installed": False,
                                       "iface_id": "0f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f"}},
        }}


def test_plug_waits_by_default_and_says_what_stays(
        fakes: tuple[Host, FakeNetlink, FakeOvsdb]) -> None:
    host, _, ovsdb = fakes
    manual = vif("ovs-manual.json")
    ovsdb.vswitchd_running = False
    with pytest.raises(NotReadyError, match="what was plugged stays"):
        DRIVER.plug(manual, host, timeout=0)
    assert manual.tap_name in ovsdb.rows["Interface"]  # committed, and left
    ovsdb.apply_config()
    assert DRIVER.plug(manual, host).already_done  # plugged, and now ready


def test_reasons_an_ovs_port_is_not_ready(fakes: tuple[Host, FakeNetlink, FakeOvsdb]) -> None:
    host, _, ovsdb = fakes
    manual = vif("ovs-manual.json")
    ovsdb.errors[manual.tap_name] = "could not open network device tap0f6d3c1e-5b"
    DRIVER.plug(manual, host, wait=False)
    [state] = DRIVER.readiness([manual], host)
    assert state.reasons == ("OVS port tap0f6d3c1e-5b: ovs-vswitchd cannot use it (ofport -1): "
                             "could not open network device tap0f6d3c1e-5b",)
    del ovsdb.errors[manual.tap_name]
    ovsdb.ofports[manual.tap_name] = 7
    ovsdb.ovn = True  # an OVN chassis: ovn-controller must have installed the port's flows
    [state] = DRIVER.readiness([manual], host)
    assert state.reasons == ("OVS port tap0f6d3c1e-5b: ovn-controller has not installed its "
                             "flows (no external_ids:ovn-installed)",)
    ovsdb.ovn_installed.add(manual.tap_name)
    assert DRIVER.readiness([manual], host)[0].ready
    virtualport = vif("ovs-virtualport.json", id="1f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f")
    [state] = GenericVIFDriver().readiness([virtualport], host, started=True)
    assert state.reasons == ("OVS port tap1f6d3c1e-5b does not exist",)


def test_reasons_a_device_is_not_ready(fakes: tuple[Host, FakeNetlink, FakeOvsdb]) -> None:
    host, netlink, _ = fakes
    bridge = vif("bridge.json")
    [state] = DRIVER.readiness([bridge], host)
    assert state.reasons == ("red does not exist",)
    netlink.add_device("red", "bridge")
    assert DRIVER.readiness([bridge], host)[0].reasons == ("red is down",)
    netlink.devices["red"].up = True
    assert DRIVER.readiness([bridge], host)[0].ready
    [state] = DRIVER.readiness([bridge], host, started=True)
    assert state.reasons == ("tap0f6d3c1e-5b does not exist",)
    netlink.add_device("other", "bridge", up=True)
    netlink.add_device("tap0f6d3c1e-5b", "tun", up=True, master="other")
    [state] = DRIVER.readiness([bridge], host, started=True)
    assert state.reasons == ("tap0f6d3c1e-5b is not a port of red (it is on other)",)
    netlink.devices["tap0f6d3c1e-5b"].master = netlink.devices["red"].index
    netlink.devices["tap0f6d3c1e-5b"].port_state = 1
    [state] = DRIVER.readiness([bridge], host, started=True)
    assert state.reasons == ("tap0f6d3c1e-5b is not forwarding on red (state listening)",)
    netlink.devices["tap0f6d3c1e-5b"].port_state = 3
    assert DRIVER.wait([bridge], host, started=True)[0].ready


def test_an_isolated_vif_needs_an_isolated_port(
        fakes: tuple[Host, FakeNetlink, FakeOvsdb]) -> None:
    host, netlink, _ = fakes
    isolated = vif("bridge-isolated.json")
    netlink.add_device("red", "bridge", up=True)
    netlink.add_device(isolated.tap_name, "tun", up=True, master="red")
    [state] = DRIVER.readiness([isolated], host, started=True)
    assert state.reasons == ("tap9a8b7c6d-5e is not an isolated port of red (libvirt isolates "
                             "it from <port isolated='yes'/> when it starts the guest)",)
    assert state.details["tap9a8b7c6d-5e"]["link"]["isolated"] is False
    netlink.devices[isolated.tap_name].port_isolated = True
    [state] = DRIVER.readiness([isolated], host, started=True)
    assert state.ready
    assert state.details["tap9a8b7c6d-5e"]["link"]["isolated"] is True
    # before the guest starts there is no TAP to ask about: the bridge alone
    assert DRIVER.readiness([isolated], host)[0].ready


def test_conditions_are_values() -> None:
    assert LinkReady("a", bridge="b") == LinkReady("a", "b")
    assert OvsPortReady("p").describe() == "OVS port p has an OpenFlow port"


class _OverflowedSocket:
    """A netlink event socket whose receive buffer overflowed: the kernel says ENOBUFS once."""

    def __init__(self) -> None:
        self.calls = 0

    def recv(self, size: int) -> bytes:
        self.calls += 1
        if self.calls == 1:
            raise OSError(errno.ENOBUFS, "No buffer space available")
        raise BlockingIOError


def test_an_overflowed_event_socket_only_means_something_changed() -> None:
    """Found by bench/plug.py's 500-VIF burst: hundreds of link changes overflow the event
    socket; the wait must re-read, not fail."""
    from vifplug.host.ready import _drain

    sock = _OverflowedSocket()
    _drain(sock)  # no exception
    assert sock.calls == 1
