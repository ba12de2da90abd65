"""The ``vifplug`` command: help, render, validate, explain, schema, and its exit codes.

In-process through ``vifplug.cli.main(argv, stdout=..., stderr=...)`` where that is enough, and as
``python -m vifplug`` / the installed ``vifplug`` console script where the entry point matters.
XML is always parsed and compared as trees, never as text.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

import vifplug
from vifplug.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
METADATA_NS = "http://vifplug.org/xmlns/vifplug/1"
#: run_main / run_module / run_script fixtures (conftest.py): a Result with code, stdout, stderr.
Runner = Callable[..., Any]

SUBCOMMAND_OPTIONS = {
    "render": ["vif.json", "--firewall", "--libvirt-version", "--metadata"],
    "validate": ["vif.json", "--firewall", "--libvirt-version"],
    "explain": ["vif.json", "--firewall", "--libvirt-version"],
    "schema": ["JSON Schema"],
}


def _example(name: str) -> Path:
    return EXAMPLES / name


def _examples() -> list[Path]:
    found = sorted(EXAMPLES.glob("*.json"))
    assert found, f"no examples in {EXAMPLES}"
    return found


def _canon(element: etree._Element) -> tuple[Any, ...]:
    """A comparable form of an element tree: tag, attributes, text, children (order-free)."""
    children = sorted(_canon(child) for child in element)
    text = (element.text or "").strip()
    return (element.tag, tuple(sorted(element.attrib.items())), text, tuple(children))


def _xml(text: str) -> etree._Element:
    return etree.fromstring(text.encode())


def assert_same_tree(actual: etree._Element, expected: etree._Element) -> None:
    assert _canon(actual) == _canon(expected), (
        etree.tostring(actual, encoding="unicode") + "\n!=\n"
        + etree.tostring(expected, encoding="unicode")
    )


# --- help and usage -----------------------------------------------------------------------------


def test_top_level_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: vifplug")
    for word in ("render", "validate", "explain", "schema", "--version", "Exit codes"):
        assert word in out, word


@pytest.mark.parametrize(("command", "options"), SUBCOMMAND_OPTIONS.items())
def test_subcommand_help(capsys: pytest.CaptureFixture[str], command: str,
                         options: list[str]) -> None:
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: vifplug {command}")
    for option in options:
        assert option in out, option
    if command == "schema":
        assert "--firewall" not in out


@pytest.mark.parametrize("entry", ["module", "script"])
@pytest.mark.parametrize("command", [None, *SUBCOMMAND_OPTIONS])
def test_help_from_the_entry_points(run_module: Runner, run_script: Runner, entry: str,
                                    command: str | None) -> None:
    run = run_module if entry == "module" else run_script
    args = ["--help"] if command is None else [command, "--help"]
    result = run(*args)
    assert (result.code, result.stderr) == (0, "")
    expected = SUBCOMMAND_OPTIONS.get(command or "", ["render", "validate", "explain", "schema"])
    for word in expected:
        assert word in result.stdout, word


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"vifplug {vifplug.__version__}"


def test_help_goes_to_the_given_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    assert main(["--help"], stdout=out, stderr=io.StringIO()) == 0
    assert "usage: vifplug" in out.getvalue()
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("argv", [[], ["render"], ["frobnicate", "x.json"],
                                  ["render", "--no-such-option", "x.json"]])
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(argv, stdout=out, stderr=err) == 2
    assert out.getvalue() == ""
    assert "usage: vifplug" in err.getvalue()
    assert capsys.readouterr() == ("", "")  # nothing leaks to the process's own streams


# --- render -------------------------------------------------------------------------------------

BRIDGE_XML = """
<interface type="bridge">
  <mac address="fa:16:3e:12:34:56"/>
  <source bridge="red"/>
  <target dev="tap0f6d3c1e-5b"/>
  <model type="virtio"/>
  <mtu size="1500"/>
</interface>
"""

OVS_VIRTUALPORT_XML = """
<interface type="bridge">
  <mac address="fa:16:3e:12:34:56"/>
  <source bridge="br-int"/>
  <vlan><tag id="100"/></vlan>
  <virtualport type="openvswitch">
    <parameters interfaceid="0f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f"/>
  </virtualport>
  <target dev="tap0f6d3c1e-5b"/>
  <model type="virtio"/>
  <mtu size="1450"/>
</interface>
"""

OVS_HYBRID_XML = """
<interface type="bridge">
  <mac address="fa:16:3e:12:34:56"/>
  <source bridge="qbr0f6d3c1e-5b"/>
  <target dev="tap0f6d3c1e-5b"/>
  <model type="virtio"/>
  <mtu size="1450"/>
</interface>
"""

OVS_MANUAL_OLD_LIBVIRT_XML = """
<interface type="ethernet">
  <mac address="fa:16:3e:12:34:56"/>
  <target dev="tap0f6d3c1e-5b"/>
  <model type="virtio"/>
</interface>
"""


@pytest.mark.parametrize(("args", "expected"), [
    (["examples/bridge.json"], BRIDGE_XML),
    (["examples/ovs-virtualport.json"], OVS_VIRTUALPORT_XML),
    # --firewall: an OVS VIF whose switch does not filter takes the hybrid path.
    (["--firewall", "examples/ovs-virtualport.json"], OVS_HYBRID_XML),
    # libvirt 0.9.10: no virtualport (< 0.9.11), no <mtu> (< 3.1.0), no managed='no' (< 5.1.0).
    (["--libvirt-version", "0.9.10", "examples/ovs-virtualport.json"],
     OVS_MANUAL_OLD_LIBVIRT_XML),
], ids=["bridge", "ovs-virtualport", "firewall-hybrid", "old-libvirt-manual"])
def test_render_one_object(run_main: Runner, monkeypatch: pytest.MonkeyPatch,
                           args: list[str], expected: str) -> None:
    monkeypatch.chdir(EXAMPLES.parent)
    result = run_main("render", *args)
    assert (result.code, result.stderr) == (0, "")
    root = _xml(result.stdout)
    assert root.tag == "interface"
    assert_same_tree(root, _xml(expected))


def test_render_is_pretty_printed_without_declaration(run_main: Runner) -> None:
    result = run_main("render", str(_example("bridge.json")))
    assert not result.stdout.startswith("<?xml")
    assert result.stdout.endswith("</interface>\n")
    assert len(result.stdout.splitlines()) == 7


def _interfaces_of(path: Path, run_main: Runner, tmp_path: Path) -> list[etree._Element]:
    """Each VIF of an array file rendered on its own (from a one-object file)."""
    rendered = []
    for index, vif in enumerate(json.loads(path.read_text())):
        single = tmp_path / f"vif{index}.json"
        single.write_text(json.dumps(vif))
        result = run_main("render", str(single))
        assert result.code == 0, result.stderr
        rendered.append(_xml(result.stdout))
    return rendered


def test_render_array_prints_devices_in_order(run_main: Runner, tmp_path: Path) -> None:
    path = _example("guest-three-nics.json")
    data = json.loads(path.read_text())
    result = run_main("render", str(path))
    assert (result.code, result.stderr) == (0, "")
    root = _xml(result.stdout)
    assert root.tag == "devices"
    assert [child.tag for child in root] == ["interface"] * len(data) == ["interface"] * 3
    assert [child.find("mac").get("address") for child in root] == [v["mac"] for v in data]
    assert [child.get("type") for child in root] == ["bridge", "bridge", "direct"]
    for child, alone in zip(root, _interfaces_of(path, run_main, tmp_path), strict=True):
        assert_same_tree(child, alone)


def test_render_array_of_one_still_prints_devices(run_main: Runner, tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_text("[" + _example("bridge.json").read_text() + "]")
    result = run_main("render", str(path))
    assert result.code == 0, result.stderr
    root = _xml(result.stdout)
    assert root.tag == "devices"
    assert len(root) == 1
    assert_same_tree(root[0], _xml(BRIDGE_XML))


def test_render_array_after_much_leading_whitespace(run_main: Runner, tmp_path: Path) -> None:
    path = tmp_path / "padded.json"
    path.write_text(" " * 5000 + _example("guest-three-nics.json").read_text())
    result = run_main("render", str(path))
    assert result.code == 0, result.stderr
    root = _xml(result.stdout)
    assert root.tag == "devices"
    assert len(root) == 3


def test_render_metadata(run_main: Runner) -> None:
    path = _example("guest-three-nics.json")
    data = json.loads(path.read_text())
    result = run_main("render", "--metadata", str(path))
    assert (result.code, result.stderr) == (0, "")
    root = _xml(result.stdout)
    assert root.tag == f"{{{METADATA_NS}}}interfaces"
    assert [child.tag for child in root] == [f"{{{METADATA_NS}}}interface"] * 3
    assert [(child.get("mac"), child.get("network")) for child in root] == [
        (v["mac"], v["network"]["name"]) for v in data
    ]
    # the port identity the migration hook carries across hosts
    assert root[0].get("interfaceid") == data[0]["ovs"]["interface_id"]
    assert root[2].get("instanceid") == data[2]["qbg"]["instance_id"]
    assert not root.findall(".//interface")  # no libvirt <interface> in metadata mode


def test_render_metadata_of_one_object(run_main: Runner) -> None:
    result = run_main("render", "--metadata", str(_example("hostdev.json")))
    assert result.code == 0, result.stderr
    expected = _xml(f'<vifplug:interfaces xmlns:vifplug="{METADATA_NS}">'
                    # ask-vlan: the VLAN the guest asks of every host (the merge rule)
                    '<vifplug:interface mac="fa:16:3e:4d:5e:6f" network="sriov" ask-vlan="300"/>'
                    "</vifplug:interfaces>")
    assert_same_tree(_xml(result.stdout), expected)


def test_render_lower_cases_the_mac(run_main: Runner, tmp_path: Path) -> None:
    data = json.loads(_example("bridge.json").read_text())
    data["mac"] = "FA:16:3E:12:34:56"
    path = tmp_path / "upper.json"
    path.write_text(json.dumps(data))
    result = run_main("render", str(path))
    assert result.code == 0, result.stderr
    assert_same_tree(_xml(result.stdout), _xml(BRIDGE_XML))


# --- render - (stdin) ---------------------------------------------------------------------------


def test_render_stdin_in_process(run_main: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(_example("bridge.json").read_text()))
    result = run_main("render", "-")
    assert (result.code, result.stderr) == (0, "")
    assert_same_tree(_xml(result.stdout), _xml(BRIDGE_XML))


@pytest.mark.parametrize("entry", ["module", "script"])
def test_render_stdin_subprocess(run_module: Runner, run_script: Runner, entry: str) -> None:
    run = run_module if entry == "module" else run_script
    result = run("render", "-", input=_example("ovs-virtualport.json").read_text())
    assert (result.code, result.stderr) == (0, "")
    assert_same_tree(_xml(result.stdout), _xml(OVS_VIRTUALPORT_XML))


def test_render_stdin_array(run_module: Runner) -> None:
    result = run_module("render", "-", input=_example("guest-three-nics.json").read_text())
    assert result.code == 0, result.stderr
    root = _xml(result.stdout)
    assert root.tag == "devices"
    assert len(root) == 3


def test_render_stdin_bad_input_names_stdin(run_module: Runner) -> None:
    data = json.loads(_example("bridge.json").read_text())
    data["network"]["vlan"] = 4095
    result = run_module("render", "-", input=json.dumps(data))
    assert result.code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("<stdin>: $.network.vlan: must be at most 4094")


def test_render_stdin_not_utf8(run_module: Runner) -> None:
    text = _example("bridge.json").read_bytes().replace(b'"red"', b'"r\xe9d"', 1)
    result = run_module("render", "-", input=text)
    assert result.code == 2, result.stderr
    assert result.stdout == ""
    assert "<stdin>: $: not UTF-8" in result.stderr


# --- validate -----------------------------------------------------------------------------------

CONNECTIONS = {
    "802.1qbg.json": "802.1qbg",
    "802.1qbh.json": "802.1qbh",
    "bridge-firewalled.json": "bridge",
    "bridge-isolated.json": "bridge",
    "bridge.json": "bridge",
    "direct.json": "direct",
    "ethernet.json": "ethernet",
    "hostdev.json": "hostdev",
    "ovs-hybrid.json": "ovs-hybrid",
    "ovs-manual.json": "ovs-manual",
    "ovs-trunk.json": "ovs-virtualport",
    "ovs-virtualport.json": "ovs-virtualport",
    "vhostuser.json": "vhostuser",
    "vdpa.json": "vdpa",
}


def test_every_example_has_an_expected_connection() -> None:
    singles = {p.name for p in _examples() if p.read_text().lstrip().startswith("{")}
    assert singles == set(CONNECTIONS)


@pytest.mark.parametrize(("name", "connection"), CONNECTIONS.items())
def test_validate_example(run_main: Runner, name: str, connection: str) -> None:
    path = _example(name)
    result = run_main("validate", str(path))
    assert (result.code, result.stderr) == (0, "")
    assert result.stdout == f"{path}: valid (1 VIF: {connection})\n"


def test_validate_array(run_module: Runner) -> None:
    result = run_module("validate", "examples/guest-three-nics.json")
    assert (result.code, result.stderr) == (0, "")
    assert result.stdout == ("examples/guest-three-nics.json: valid "
                             "(3 VIFs: ovs-virtualport, bridge, 802.1qbg)\n")


def test_validate_with_firewall_picks_hybrid(run_script: Runner) -> None:
    result = run_script("validate", "--firewall", "examples/guest-three-nics.json")
    assert (result.code, result.stderr) == (0, "")
    assert "(3 VIFs: ovs-hybrid, bridge, 802.1qbg)" in result.stdout


# --- explain ------------------------------------------------------------------------------------


def _path_line(stdout: str) -> str:
    lines = [line for line in stdout.splitlines() if line.strip().startswith("path")]
    assert len(lines) == 1, stdout
    return lines[0]


@pytest.mark.parametrize("entry", ["main", "module"])
def test_explain_ovs_hybrid(run_main: Runner, run_module: Runner, entry: str) -> None:
    run = run_main if entry == "main" else run_module
    result = run("explain", str(_example("ovs-hybrid.json")))
    assert (result.code, result.stderr) == (0, "")
    out = result.stdout
    assert "0f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f (ovs)" in out
    assert "connection  ovs-hybrid:" in out
    assert "because     plug 'hybrid' is given" in out
    assert "firewall=no" in out
    path = _path_line(out)
    hops = ["fa:16:3e:12:34:56", "tap0f6d3c1e-5b", "qbr0f6d3c1e-5b",
            "qvb0f6d3c1e-5b═qvo0f6d3c1e-5b", "br-int", "[vlan 100]"]
    positions = [path.find(hop) for hop in hops]
    assert -1 not in positions, (hops, path)
    assert positions == sorted(positions), "the path runs from the guest outwards"


def test_explain_gives_the_reason_for_the_automatic_choice(run_main: Runner) -> None:
    path = str(_example("ovs-virtualport.json"))
    plain = run_main("explain", path)
    firewalled = run_main("explain", "--firewall", path)
    assert plain.code == firewalled.code == 0
    assert "connection  ovs-virtualport:" in plain.stdout
    assert "adds OVS ports itself" in plain.stdout
    assert "connection  ovs-hybrid:" in firewalled.stdout
    assert "the host firewalls" in firewalled.stdout
    assert "firewall=yes" in firewalled.stdout
    assert "qbr0f6d3c1e-5b" in _path_line(firewalled.stdout)
    assert "qbr" not in _path_line(plain.stdout)


def test_explain_array_has_one_block_per_vif(run_main: Runner) -> None:
    path = _example("guest-three-nics.json")
    data = json.loads(path.read_text())
    result = run_main("explain", str(path))
    assert (result.code, result.stderr) == (0, "")
    blocks = result.stdout.rstrip("\n").split("\n\n")
    assert len(blocks) == 3
    for block, vif in zip(blocks, data, strict=True):
        assert block.startswith(f"VIF {vif['id']} ({vif['vif_type']}), MAC {vif['mac']}")
        assert f"network {vif['network']['name']!r}" in block
        assert "  path        " in block


# --- schema -------------------------------------------------------------------------------------


def test_schema_is_json_schema(cli_schema: dict[str, Any], schema_validator: Any) -> None:
    # schema_validator has already run check_schema (a SchemaError would fail the fixture).
    assert cli_schema["$schema"].endswith("/draft/2020-12/schema")
    assert "Vif" in cli_schema["$defs"]
    assert schema_validator.is_valid(json.loads(_example("bridge.json").read_text()))
    assert not schema_validator.is_valid({"vif_type": "bridge"})


def test_schema_subprocess_prints_the_same_schema(run_script: Runner,
                                                  cli_schema: dict[str, Any]) -> None:
    result = run_script("schema")
    assert (result.code, result.stderr) == (0, "")
    assert json.loads(result.stdout) == cli_schema


@pytest.mark.parametrize("path", _examples(), ids=lambda p: p.name)
def test_every_example_matches_the_schema(schema_validator: Any, path: Path) -> None:
    data = json.loads(path.read_text())
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in schema_validator.iter_errors(data)]
    assert errors == []


@pytest.mark.parametrize(("change", "where"), [
    ({"mtu": 67}, "mtu"),
    ({"colour": "red"}, "colour"),
    ({"vif_type": "ovs"}, "ovs"),  # ovs needs ovs.interface_id
    ({"filtered": "yes"}, "filtered"),
], ids=["range", "unknown-key", "required-per-vif-type", "type"])
def test_schema_rejects_a_broken_example(schema_validator: Any, change: dict[str, Any],
                                         where: str) -> None:
    data = {**json.loads(_example("bridge.json").read_text()), **change}
    assert not schema_validator.is_valid(data), where
    with pytest.raises(vifplug.InvalidVifError):  # the model agrees with the schema
        vifplug.load_vifs(data)


# --- exit 1: unexpected errors ------------------------------------------------------------------


def test_unexpected_error_exits_1(run_main: Runner, mocker: Any) -> None:
    boom = mocker.patch("vifplug.driver.GenericVIFDriver.interface_xml",
                        side_effect=RuntimeError("boom in interface_xml"))
    result = run_main("render", str(_example("bridge.json")))
    boom.assert_called_once()
    assert result.code == 1
    assert result.stdout == ""
    assert result.stderr == "vifplug: unexpected error: RuntimeError: boom in interface_xml\n"
    assert "Traceback" not in result.stderr


def test_unexpected_error_in_an_array_prints_nothing(run_main: Runner, mocker: Any) -> None:
    mocker.patch("vifplug.driver.GenericVIFDriver.interface_xml",
                 side_effect=[etree.Element("interface"), RuntimeError("second VIF")])
    result = run_main("render", str(_example("guest-three-nics.json")))
    assert result.code == 1
    assert result.stdout == ""
    assert "unexpected error: RuntimeError: second VIF" in result.stderr


def test_os_error_not_about_the_input_exits_1(run_main: Runner, mocker: Any) -> None:
    mocker.patch("vifplug.model.Vif.json_schema", side_effect=OSError(28, "No space left"))
    result = run_main("schema")
    assert result.code == 1
    assert result.stdout == ""
    assert "cannot read" not in result.stderr
    assert "No space left" in result.stderr


def test_bad_input_is_exit_2_not_1(run_main: Runner, tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"vif_type": "bridge"}')
    result = run_main("validate", str(path))
    assert result.code == 2
    assert result.stdout == ""
    assert f"{path}: $.id: required" in result.stderr.splitlines()


def test_a_reader_that_leaves_early_gets_no_error_spew() -> None:
    """``vifplug schema | head -1``: a broken pipe is not an error worth a message."""
    proc = subprocess.Popen([sys.executable, "-m", "vifplug", "schema"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdout.read(1)
    proc.stdout.close()
    assert proc.stderr.read() == b""
    proc.stderr.close()
    assert proc.wait(timeout=30) in (0, 1)
