"""``vifplug render|explain|plug|unplug --networks FILE``: a VIF resolved against this host's map
as the migration hook resolves an incoming guest — the first usable option of its network's
priority list, the pool NIC from the pools' state (render: read only; plug: taken; unplug:
freed), refusals as bad input (exit 2, the JSON path, nothing taken)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import EXAMPLES
from lxml import etree

from vifplug.cli import main
from vifplug.pools import Holder, PoolState, load

MAP = """\
[[networks.green.options]]
switch = "direct"
mode = "passthrough"
interfaces = ["eth10", "eth11"]

[[networks.green.options]]
switch = "legacy"
bridge = "br-green"
"""
VIF_ID = "1a2b3c4d-5e6f-4a1b-9c2d-3e4f5a6b7c8d"
MAC = "fa:16:3e:1a:2b:3c"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    networks = tmp_path / "networks.toml"
    networks.write_text(MAP)
    vif = tmp_path / "vif.json"
    vif.write_text((EXAMPLES / "direct.json").read_text())
    return {"networks": networks, "vif": vif, "pools": tmp_path / "pools.json"}


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def hold(path: Path, *nics: str) -> None:
    path.write_text(PoolState({"green": {nic: [Holder(f"guest-{nic}", "fa:16:3e:00:00:09")]
                                          for nic in nics}}).to_json())


def source(xml: str) -> dict[str, str]:
    element = etree.fromstring(xml.encode()).find("source")
    assert element is not None
    return dict(element.attrib)


def test_render_takes_the_first_option_with_a_free_nic_read_only(files: dict[str, Path]) -> None:
    argv = ("render", "--networks", str(files["networks"]), "--pools", str(files["pools"]),
            str(files["vif"]))
    code, out, err = run(*argv)
    assert (code, err) == (0, "")
    assert source(out) == {"dev": "eth10", "mode": "passthrough"}
    assert not files["pools"].exists()  # read only
    hold(files["pools"], "eth10")
    assert source(run(*argv)[1]) == {"dev": "eth11", "mode": "passthrough"}
    hold(files["pools"], "eth10", "eth11")
    code, out, _ = run(*argv)
    assert code == 0
    assert etree.fromstring(out.encode()).get("type") == "bridge"
    assert source(out) == {"bridge": "br-green"}


def test_render_metadata_and_arrays(files: dict[str, Path]) -> None:
    data = json.loads(files["vif"].read_text())
    second = {**data, "id": "2a2b3c4d-5e6f-4a1b-9c2d-3e4f5a6b7c8d", "mac": "fa:16:3e:1a:2b:3d",
              "devname": "mvt2a2b3c4d"}
    files["vif"].write_text(json.dumps([data, second]))
    code, out, _ = run("render", "--networks", str(files["networks"]), "--pools",
                       str(files["pools"]), str(files["vif"]))
    assert code == 0
    devices = etree.fromstring(out.encode())
    # one preview, one copy of the state: two interfaces never share a passthrough NIC
    assert [i.find("source").get("dev") for i in devices] == ["eth10", "eth11"]
    code, out, _ = run("render", "--metadata", "--networks", str(files["networks"]),
                       str(files["vif"]))
    entries = etree.fromstring(out.encode())
    assert [e.get("network") for e in entries] == ["green", "green"]


def test_render_refusals_are_bad_input_with_the_json_path(files: dict[str, Path]) -> None:
    files["networks"].write_text(MAP.split("\n\n", maxsplit=1)[0] + "\n")  # the pool only
    hold(files["pools"], "eth10", "eth11")
    data = json.loads(files["vif"].read_text())
    files["vif"].write_text(json.dumps([data]))
    code, out, err = run("render", "--networks", str(files["networks"]), "--pools",
                         str(files["pools"]), str(files["vif"]))
    assert (code, out) == (2, "")
    assert err == (f"{files['vif']}: $[0].network: interface {MAC}: network 'green': no "
                   f"connection option is usable on this host ({files['networks']}): options[0] "
                   "(macvtap on a pool of eth10, eth11 (one guest per NIC) (passthrough)): pool "
                   "of network green exhausted: eth10 (guest-eth10), eth11 (guest-eth11); "
                   "refused\n")
    code, _, err = run("render", "--as-network", "--networks", str(files["networks"]),
                       str(files["vif"]))
    assert code == 2
    assert "--networks and --as-network: give one" in err
    files["networks"].write_text(MAP + 'nope = 1\n')
    code, _, err = run("render", "--networks", str(files["networks"]), str(files["vif"]))
    assert code == 2
    assert err.startswith(f"{files['networks']}:9: networks.green.options[1].nope: unknown key")


def test_explain_shows_the_option_and_why_earlier_ones_were_skipped(
        files: dict[str, Path]) -> None:
    hold(files["pools"], "eth10", "eth11")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VIFPLUG_POOLS", str(files["pools"]))
        code, out, _ = run("explain", "--networks", str(files["networks"]), str(files["vif"]))
    assert code == 0
    lines = out.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("  host"))
    assert lines[start:start + 3] == [
        f"  host        network 'green' ({files['networks']}): Linux bridge br-green",
        "  option      options[1] of 2 (the first usable here: the network's priority list)",
        "  skipped     options[0] (macvtap on a pool of eth10, eth11 (one guest per NIC) "
        "(passthrough)): pool of network green exhausted: eth10 (guest-eth10), eth11 "
        "(guest-eth11)",
    ]


class Plugged(Exception):
    pass


def fake_plug(result: Any) -> Any:
    def plug(*args: Any, **kwargs: Any) -> int:
        if isinstance(result, BaseException):
            raise result
        return int(result)
    return plug


def test_plug_takes_the_nic_unplug_frees_it_and_a_failed_plug_gives_it_back(
        files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("vifplug.cli._host", lambda args: None)
    argv = ["--networks", str(files["networks"]), "--pools", str(files["pools"]), "--domain",
            "vm1", str(files["vif"])]
    code, out, _ = run("plug", "--dry-run", *argv)
    assert code == 0
    assert out.splitlines()[0] == f"pool of network green: eth10 for vm1 ({MAC}) (would take)"
    assert not files["pools"].exists()

    monkeypatch.setattr("vifplug.cli._plug_or_unplug", fake_plug(Plugged("host said no")))
    assert run("plug", *argv)[0] == 1
    assert load(str(files["pools"])) == PoolState()  # given back

    monkeypatch.setattr("vifplug.cli._plug_or_unplug", fake_plug(0))
    assert run("plug", *argv)[0] == 0
    assert load(str(files["pools"])).networks["green"] == {"eth10": [Holder("vm1", MAC)]}
    monkeypatch.setattr("vifplug.cli._plug_or_unplug", fake_plug(Plugged("again")))
    assert run("plug", *argv)[0] == 1  # a plug again that fails keeps what was held before
    assert load(str(files["pools"])).networks["green"] == {"eth10": [Holder("vm1", MAC)]}

    monkeypatch.setattr("vifplug.cli._plug_or_unplug", fake_plug(0))
    code, out, _ = run("unplug", *argv)
    assert code == 0
    assert out == f"pool of network green: eth10 freed (vm1, {MAC})\n"
    assert load(str(files["pools"])) == PoolState()


def test_plug_refuses_before_taking_anything(files: dict[str, Path],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("vifplug.cli._host", lambda args: None)
    monkeypatch.setattr("vifplug.cli._plug_or_unplug", fake_plug(Plugged("never called")))
    files["networks"].write_text(MAP.split("\n\n", maxsplit=1)[0] + "\n")
    hold(files["pools"], "eth10", "eth11")
    before = files["pools"].read_text()
    code, out, err = run("plug", "--networks", str(files["networks"]), "--pools",
                         str(files["pools"]), str(files["vif"]))
    assert (code, out) == (2, "")
    assert "$.network: interface fa:16:3e:1a:2b:3c: network 'green': no connection option" in err
    assert files["pools"].read_text() == before


@pytest.mark.parametrize("command", ["render", "plug", "unplug"])
def test_pools_and_domain_go_with_networks(command: str, files: dict[str, Path]) -> None:
    code, out, err = run(command, "--pools", str(files["pools"]), str(files["vif"]))
    assert (code, out) == (2, "")
    assert "--pools goes with --networks" in err
    if command != "render":
        code, _, err = run(command, "--domain", "vm1", str(files["vif"]))
        assert code == 2
        assert "--domain goes with --networks" in err


OTHER_SWITCHES = """\
[networks.green]
switch = "direct"
mode = "passthrough"
interfaces = ["eth10"]

[networks.blue]
switch = "ovs"
bridge = "br-x"
vlan = 100

[networks.red]
switch = "ovs"
bridge = "br-int"
"""


@pytest.mark.parametrize(("example", "plan"), [
    ("direct.json", ["VIF 1a2b3c4d-5e6f-4a1b-9c2d-3e4f5a6b7c8d (direct):",
                     "  1. check macvtap lower device eth10 exists"]),
    ("ovs-hybrid.json", ["VIF 0f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f (ovs-virtualport):",
                         "  1. check OVS bridge br-x exists"]),
], ids=["the pool's NIC, not the VIF's own", "the map's OVS bridge, by virtualport"])
def test_plug_plans_the_host_side_the_map_chose(example: str, plan: list[str],
                                                tmp_path: Path) -> None:
    """plug --networks makes the host side render --networks shows, not the VIF's own."""
    (tmp_path / "networks.toml").write_text(OTHER_SWITCHES)
    code, out, err = run("plug", "--dry-run", "--networks", str(tmp_path / "networks.toml"),
                         "--pools", str(tmp_path / "pools.json"), str(EXAMPLES / example))
    assert (code, err) == (0, "")
    assert [line for line in out.splitlines() if "would take" not in line] == plan
    assert not (tmp_path / "pools.json").exists()


def test_plug_refuses_a_kind_that_cannot_make_the_maps_host_side(tmp_path: Path) -> None:
    (tmp_path / "networks.toml").write_text(OTHER_SWITCHES)
    code, out, err = run("plug", "--dry-run", "--networks", str(tmp_path / "networks.toml"),
                         str(EXAMPLES / "bridge.json"))
    assert (code, out) == (2, "")
    assert err.startswith(f"{EXAMPLES / 'bridge.json'}: $.vif_type: a 'bridge' VIF "
                          "cannot make the host side network 'red' has on this host "
                          "(type=bridge bridge=br-int virtualport openvswitch")
