"""Readiness on a real kernel and a private OVS: plug commits, ``wait`` says when the VIF is
ready — only once ovs-vswitchd has applied it, with the reason when it is not.

No timed assertion: a ``timeout`` here bounds a wait that must fail (ovs-vswitchd stopped), and a
wait that must succeed is given the default 30 s it never needs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.functional.conftest import Env, example_data
from vifplug.driver import GenericVIFDriver
from vifplug.host.errors import NotAppliedError, NotReadyError
from vifplug.loading import vifs_from_data
from vifplug.model import BridgeVif, OvsVif, VhostUserVif

pytestmark = [pytest.mark.root]

DRIVER = GenericVIFDriver(firewall=True)


@pytest.mark.parametrize("example", ["ovs-hybrid.json", "ovs-manual.json"])
def test_plug_without_waiting_then_wait(example: str, ovsdb_backend: str, env: Env) -> None:
    vif = env.vif(example)
    assert isinstance(vif, OvsVif)
    host = env.host(ovsdb_backend)
    outcome = DRIVER.plug(vif, host, wait=False)
    if ovsdb_backend == "native":  # committed without waiting: what vswitchd must reach
        assert isinstance(outcome.ovs_cfg, int)
    states = DRIVER.wait([vif], host)
    assert [state.ready for state in states] == [True]
    port = vif.qvo_name if example == "ovs-hybrid.json" else vif.tap_name
    assert int(env.ovs.get("Interface", port, "ofport")) >= 1  # as ovs-vsctl reads it
    assert states[0].details[port]["ovs"]["ofport"] == int(env.ovs.get("Interface", port,
                                                                        "ofport"))
    DRIVER.unplug(vif, host)


def test_not_ready_until_ovs_vswitchd_applies_the_plug(env: Env) -> None:
    vif = env.vif("ovs-hybrid.json")
    assert isinstance(vif, OvsVif)
    host = env.host("native")
    with env.ovs.vswitchd_stopped():
        outcome = DRIVER.plug(vif, host, wait=False)  # ovsdb-server takes the commit
        with pytest.raises(NotReadyError) as raised:
            DRIVER.wait([vif], host, timeout=1, cfg=outcome.ovs_cfg)
        message = str(raised.value)
        assert vif.id in message
        assert f"ovs-vswitchd has not applied configuration {outcome.ovs_cfg} yet" in message
        # the commit stays: its rows are in the database, its devices on the host
        assert vif.qvo_name in env.ovs.ports(env.br_int)
        assert env.netns.link(vif.qbr_name) is not None
    assert [state.ready for state in DRIVER.wait([vif], host, cfg=outcome.ovs_cfg)] == [True]
    DRIVER.unplug(vif, host)


def test_plug_that_is_not_ready_says_what_stays(env: Env) -> None:
    vif = env.vif("ovs-manual.json")
    host = env.host("native")
    with env.ovs.vswitchd_stopped(), pytest.raises(NotReadyError) as raised:
        DRIVER.plug(vif, host, timeout=1)
    assert "what was plugged stays" in str(raised.value)
    assert isinstance(vif, OvsVif)
    assert vif.tap_name in env.ovs.ports(env.br_int)
    DRIVER.wait([vif], host)
    DRIVER.unplug(vif, host)


def test_unplug_waits_for_ovs_vswitchd_after_deleting_the_devices(env: Env) -> None:
    """Unplug commits the ports' removal, deletes the devices while ovs-vswitchd applies it,
    then waits for it: with ovs-vswitchd stopped, everything is removed and the error says
    that ovs-vswitchd has not applied it."""
    vif = env.vif("ovs-hybrid.json")
    assert isinstance(vif, OvsVif)
    host = env.host("native")
    DRIVER.plug(vif, host)
    with env.ovs.vswitchd_stopped(), pytest.raises(NotAppliedError) as raised:
        DRIVER.unplug(vif, host, timeout=1)
    assert "the ports are out of OVSDB and the devices deleted" in str(raised.value)
    assert f"has not applied configuration {raised.value.cfg}" in str(raised.value)
    assert vif.qvo_name not in env.ovs.ports(env.br_int)
    for name in (vif.qbr_name, vif.qvb_name, vif.qvo_name):
        assert env.netns.link(name) is None
    DRIVER.unplug(vif, host)  # nothing left: a no-op, and nothing to wait for


def test_an_interface_vswitchd_cannot_create_is_reported_with_its_error(env: Env) -> None:
    """A vhost-user port needs DPDK, which this userspace OVS lacks: ovs-vswitchd fills the
    Interface's ``error``, and readiness says so."""
    vif = env.vif("vhostuser.json")
    assert isinstance(vif, VhostUserVif)
    host = env.host("native")
    DRIVER.plug(vif, host, wait=False)
    with pytest.raises(NotReadyError) as raised:
        DRIVER.wait([vif], host, timeout=5)
    error = env.ovs.get("Interface", vif.port_name, "error").strip('"')
    assert error not in ("", "[]")
    state = raised.value.states[0]
    assert state.details[vif.port_name]["ovs"]["error"] == error
    assert f"OVS port {vif.port_name}: ovs-vswitchd cannot use it" in str(raised.value)
    DRIVER.unplug(vif, host)


def test_linux_bridge_port_readiness_follows_the_guest_tap(env: Env) -> None:
    """A Linux-bridge VIF is ready once its bridge is up; with ``started``, once the guest's
    TAP (libvirt's) is a forwarding port of it. The guest stands in as a veth end of the TAP's
    name (a TAP without QEMU behind it has no carrier, so its port stays disabled). The wait
    wakes on the kernel's link notification."""
    vif = env.vif("bridge.json", network={"name": "red", "bridge": "vp-rdy-br",
                                          "create_bridge": True})
    assert isinstance(vif, BridgeVif)
    env.leftovers.links.append("vp-rdy-br")
    host = env.host("native")
    DRIVER.plug(vif, host)  # waits: the bridge it made is up
    with pytest.raises(NotReadyError, match=f"{vif.tap_name} does not exist"):
        DRIVER.wait([vif], host, timeout=0, started=True)

    def guest_starts() -> None:  # another thread: the wait below must wake for it
        env.netns.add_veth(vif.tap_name, "vp-rdy-guest")
        env.netns.ip("link", "set", "dev", "vp-rdy-guest", "up")
        env.netns.ip("link", "set", "dev", vif.tap_name, "master", "vp-rdy-br", "up")

    env.leftovers.links.append(vif.tap_name)
    guest = threading.Thread(target=guest_starts)
    guest.start()
    try:
        states = DRIVER.wait([vif], host, started=True)
    finally:
        guest.join()
    assert [state.ready for state in states] == [True]
    assert states[0].details[vif.tap_name]["link"]["port_state"] == "forwarding"


def vifplug(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vifplug", *args], capture_output=True,
                          text=True, check=False, timeout=60)


def test_cli_wait(env: Env, tmp_path: Path) -> None:
    data = example_data("ovs-hybrid.json")
    vif = env.leftovers.vif(vifs_from_data(data, source="x")[0])
    path = tmp_path / "vif.json"
    path.write_text(json.dumps(data))
    where = ["--netns", env.netns.name, "--ovsdb", env.ovs.db]

    with env.ovs.vswitchd_stopped():
        plugged = vifplug("plug", *where, "--no-wait", str(path))
        assert plugged.returncode == 0, plugged.stderr
        waited = vifplug("wait", *where, "--timeout", "1", "--json", str(path))
    assert waited.returncode == 1
    assert vif.id in waited.stderr
    assert "ovs-vswitchd has not applied configuration" in waited.stderr
    [state] = json.loads(waited.stdout)
    assert (state["id"], state["ready"]) == (vif.id, False)
    assert state["reasons"]
    assert "qvo" in " ".join(state["conditions"])

    ready = vifplug("wait", *where, "--json", str(path))
    assert ready.returncode == 0, ready.stderr
    [state] = json.loads(ready.stdout)
    assert (state["ready"], state["reasons"]) == (True, [])
    assert isinstance(vif, OvsVif)
    assert state["devices"][vif.qvo_name]["ovs"]["ofport"] >= 1
    assert vifplug("wait", *where, str(path)).stdout == "VIF ready\n"
    assert vifplug("wait", *where, "--timeout", "-1", str(path)).returncode == 2
    assert vifplug("unplug", *where, str(path)).returncode == 0
