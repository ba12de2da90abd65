"""``vifplug plug --networks`` on a real namespace: what it checks on the host is the NIC this
host's map (its pool) gave the VIF, not the one the VIF names; a failed plug gives the NIC back,
unplug frees it (the pools' state file is real too). Planning: tests/unit/test_cli_networks.py."""

from __future__ import annotations

import io
import json
import secrets
from pathlib import Path

import pytest

from tests.fixtures import Netns
from vifplug.cli import main
from vifplug.pools import Holder, PoolState, load

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

pytestmark = pytest.mark.root


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_plug_checks_the_pool_nic_the_map_gave(netns: Netns, tmp_path: Path) -> None:
    nic = "vpn" + secrets.token_hex(4)
    netns.add_veth(nic, nic + "p")
    (tmp_path / "networks.toml").write_text(
        f'[networks.green]\nswitch = "direct"\nmode = "passthrough"\ninterfaces = ["{nic}"]\n')
    vif = EXAMPLES / "direct.json"
    mac = json.loads(vif.read_text())["mac"]
    pools = tmp_path / "pools.json"
    where = ["--netns", netns.name]
    with_map = ["--networks", str(tmp_path / "networks.toml"), "--pools", str(pools),
                "--domain", "vm1", *where, str(vif)]

    code, _, err = run("plug", *where, str(vif))  # the VIF's own NIC: not on this host
    assert code != 0
    assert "eth2" in err

    code, out, err = run("plug", *with_map)
    assert (code, err) == (0, ""), out
    assert load(str(pools)) == PoolState({"green": {nic: [Holder("vm1", mac)]}})

    code, out, _ = run("unplug", *with_map)
    assert code == 0
    assert f"pool of network green: {nic} freed (vm1, {mac})" in out
    assert load(str(pools)) == PoolState()

    netns.delete_link(nic)  # the map's NIC gone: the real check fails, the NIC is given back
    code, _, err = run("plug", *with_map)
    assert code != 0
    assert nic in err
    assert load(str(pools)) == PoolState()
