"""vifplug.host.ovn without an OVN deployment: the chassis config, remote parsing,
reachability of a socket nobody serves, ovn-controller's pidfile, and the diagnoses that need
no southbound database (the rest is proved on real OVN in tests/functional/test_ovn.py)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from vifplug.host.ovn import (
    ChassisConfig,
    Southbound,
    SouthboundError,
    controller_status,
    diagnose,
    ovn_rundirs,
    reachable,
)

CONFIG = ChassisConfig("chassis-0", "unix:/nonexistent/sb.sock", "geneve", "203.0.113.10",
                       "br-int")


def test_chassis_config_from_external_ids() -> None:
    config = ChassisConfig.from_external_ids({"system-id": "c0", "ovn-remote": "tcp:x:6642"})
    assert config == ChassisConfig("c0", "tcp:x:6642", None, None, "br-int")
    assert not config.configured
    assert config.missing() == ["external_ids:ovn-encap-type", "external_ids:ovn-encap-ip"]
    assert CONFIG.configured


@pytest.mark.parametrize("remote", ["pssl:6642", "tcp:host", "tcp:host:0", "unix:", "x"])
def test_a_remote_vifplug_cannot_connect_to_is_said(remote: str) -> None:
    ok, said = reachable(remote)
    assert not ok
    assert "not a unix:, tcp: or ssl: OVSDB remote" in said


def test_an_unserved_unix_socket_is_unreachable(tmp_path: Path) -> None:
    ok, said = reachable(f"unix:{tmp_path}/nobody.sock,unix:{tmp_path}/nor.sock")
    assert not ok
    assert f"unix:{tmp_path}/nobody.sock: No such file or directory" in said
    assert f"unix:{tmp_path}/nor.sock" in said
    with pytest.raises(SouthboundError, match="No such file"):
        Southbound(f"unix:{tmp_path}/nobody.sock")
    with pytest.raises(SouthboundError, match="no certificates"):
        Southbound("ssl:127.0.0.1:6642")


def test_a_listening_socket_is_reachable(tmp_path: Path) -> None:
    path = tmp_path / "sb.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        server.listen()
        assert reachable(f"unix:{tmp_path}/gone.sock,unix:{path}") == (
            True, f"unix:{path} accepts connections")


def test_rundirs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OVN_RUNDIR", str(tmp_path))
    assert ovn_rundirs("unix:/srv/ovs/db.sock") == [
        tmp_path, Path("/srv/ovs"), Path("/run/ovn"), Path("/var/run/ovn")]
    monkeypatch.delenv("OVN_RUNDIR")
    assert ovn_rundirs("tcp:1.2.3.4:6640") == [Path("/run/ovn"), Path("/var/run/ovn")]


def test_controller_not_running(tmp_path: Path) -> None:
    status = controller_status([tmp_path])
    assert status.pid is None
    assert status.problem == f"ovn-controller is not running (no ovn-controller.pid in {tmp_path})"
    (tmp_path / "ovn-controller.pid").write_text(f"{os.getpid()}\n")  # not an ovn-controller
    status = controller_status([tmp_path])
    assert status.problem is not None
    assert "names no live ovn-controller" in status.problem


def test_diagnoses_before_the_southbound_database(tmp_path: Path) -> None:
    said = diagnose("tap1", None, CONFIG, rundirs=[tmp_path])
    assert said.startswith("OVS port tap1: ovn-controller has not installed its flows")
    assert "has no external_ids:iface-id" in said
    assert "not a logical port name" in diagnose("tap1", "a b;c", CONFIG, rundirs=[tmp_path])
    assert "ovn-controller is not running" in diagnose("tap1", "lsp1", CONFIG,
                                                       rundirs=[tmp_path])
