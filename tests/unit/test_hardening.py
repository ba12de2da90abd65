"""Defects an independent probe found on main (issue 13, "Hardening"), each fixed here: every bad
input is one of vifplug's own errors, with its path or ``file:line``, exit 2 (CLI) or one stderr
line and exit 1 (hook) — never a traceback, never "unexpected error", never two lines."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from vifplug.cli import main as cli
from vifplug.errors import InvalidVifError
from vifplug.hook import main as hook
from vifplug.host.apply import _Transaction
from vifplug.host.ovsdb import CAUSE_LIMIT, database_said
from vifplug.loading import MAX_DEPTH, MAX_INT_DIGITS, load_vifs, parse_vif_json
from vifplug.netmap import MAX_NESTING, NetworkMapError, load_network_map

BRIDGE_VIF = ('{"id": "0f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f", "vif_type": "bridge", '
              '"mac": "fa:16:3e:00:00:01", "network": {"name": "red", "bridge": "red"}, '
              '"mtu": %s}')


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


# --- vif.json -------------------------------------------------------------------------------------


def test_json_nested_deeper_than_the_limit_is_refused_at_its_line(tmp_path: Path) -> None:
    text = '{"id": "x",\n "network": ' + "[" * 5000 + "]" * 5000 + "}"
    with pytest.raises(InvalidVifError) as raised:
        parse_vif_json(text)
    assert str(raised.value) == (f"$: arrays or objects nested more than {MAX_DEPTH} deep "
                                 f"(line 2, column {12 + MAX_DEPTH})")
    path = tmp_path / "deep.json"
    path.write_text(text)
    assert run_cli("render", str(path)) == (
        2, "", f"{path}: $: arrays or objects nested more than {MAX_DEPTH} deep (line 2, "
               f"column {12 + MAX_DEPTH})\n")


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    escaped = '\\"[' * 100
    data = parse_vif_json('{"id": "' + escaped + "[" * 100 + '", "a": [[1]]}')
    assert isinstance(data, dict)
    assert data["a"] == [[1]]


def test_nesting_at_the_limit_is_parsed() -> None:
    data = parse_vif_json('{"a": ' + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "}")
    assert isinstance(data, dict)


def test_an_integer_too_long_to_convert_is_refused_at_its_path(tmp_path: Path) -> None:
    with pytest.raises(InvalidVifError) as raised:
        load_vifs(BRIDGE_VIF % ("9" * 5000))
    assert str(raised.value) == (f"$.mtu: an integer of 5000 digits (at most {MAX_INT_DIGITS}; "
                                 "no field takes more than a few)")
    path = tmp_path / "big.json"
    path.write_text(BRIDGE_VIF % ("-" + "9" * 4301))
    code, out, err = run_cli("render", str(path))
    assert (code, out) == (2, "")
    assert err.startswith(f"{path}: $.mtu: an integer of 4301 digits")


def test_an_integer_at_pythons_limit_reaches_the_model() -> None:
    """4,300 digits convert (with the sign beside them): the model then says what is wrong."""
    with pytest.raises(InvalidVifError) as raised:
        load_vifs(BRIDGE_VIF % ("-" + "9" * MAX_INT_DIGITS))
    assert str(raised.value).startswith("$.mtu:")
    assert "digits" not in str(raised.value)


# --- networks.toml ------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "line", "message"), [
    ('[networks.red]\nswitch = []\n', 2,
     "networks.red.switch: must be one of 'legacy', 'ovs', 'ovn', 'direct' (got [])"),
    ('[networks.red]\nswitch = {a = 1}\n', 2,
     "networks.red.switch: must be one of 'legacy', 'ovs', 'ovn', 'direct' (got {'a': 1})"),
    ("[networks.red]\n", 1,
     "networks.red.switch: must be one of 'legacy', 'ovs', 'ovn', 'direct' (got None)"),
    ('[networks.red]\nswitch = "legacy"\nbridge = ', 3,
     "not valid TOML: Invalid value (at the end of the file)"),
    ("# deep\nx = " + "[" * 2000 + "]" * 2000 + "\n", 2,
     f"not valid TOML for a network map: arrays or inline tables nested more than "
     f"{MAX_NESTING} deep"),
    ('x = 1\ny = "\n', 2, "not valid TOML: Illegal character '\\n'"),
])
def test_every_broken_map_is_one_line_with_file_and_line(
        text: str, line: int, message: str, tmp_path: Path) -> None:
    path = tmp_path / "networks.toml"
    path.write_text(text)
    with pytest.raises(NetworkMapError) as raised:
        load_network_map(path)
    assert str(raised.value) == f"{path}:{line}: {message}"
    out, err = io.StringIO(), io.StringIO()
    code = hook(["guest", "migrate", "begin", "-"], io.BytesIO(b"<domain/>"), out, err,
                networks=str(path))
    assert (code, out.getvalue()) == (1, "")
    assert err.getvalue() == f"vifplug: {path}:{line}: {message}\n"


def test_brackets_in_toml_strings_and_comments_do_not_count(tmp_path: Path) -> None:
    path = tmp_path / "networks.toml"
    deep = "[" * 100
    path.write_text(f'# {deep}\n[networks.red]\nswitch = "legacy"\n'
                    f"bridge = 'red' # {deep}\n")
    assert load_network_map(path).networks["red"].bridge == "red"


# --- the hook's refusals ------------------------------------------------------------------------


def test_a_refusal_naming_a_mac_with_a_newline_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "networks.toml"
    path.write_text('[networks.red]\nswitch = "legacy"\n')
    ns = "http://vifplug.org/xmlns/vifplug/1"
    mac = "fa:16:3e:00:00:01&#10;evil&#9;x"
    domain = (f'<domain><name>g</name><metadata><v:interfaces xmlns:v="{ns}"><v:interface '
              f'mac="{mac}" network="nope"/></v:interfaces></metadata><devices><interface '
              f'type="bridge"><mac address="{mac}"/><source bridge="red"/></interface>'
              "</devices></domain>")
    out, err = io.StringIO(), io.StringIO()
    code = hook(["g", "migrate", "begin", "-"], io.BytesIO(domain.encode()), out, err,
                networks=str(path))
    assert (code, out.getvalue()) == (1, "")
    assert err.getvalue() == ("vifplug: interface fa:16:3e:00:00:01\\nevil\\tx: network "
                              f"'nope' is not defined on this host ({path})\n")


# --- what a failed OVSDB transaction says --------------------------------------------------------


def test_ovsdbapps_error_becomes_the_error_and_the_first_sentence_of_its_details() -> None:
    said = ('OVSDB Error: {"details":"Transaction causes multiple rows in \\"Interface\\" table '
            'to have identical values (qvo1) for index on column \\"name\\".  First row, with '
            'UUID 4e1e..., existed in the database before this transaction.",'
            '"error":"constraint violation"}')
    assert database_said(said) == ('constraint violation: Transaction causes multiple rows in '
                                   '"Interface" table to have identical values (qvo1) for '
                                   'index on column "name"')


def test_ovs_vsctls_log_lines_and_repeated_prefix_go() -> None:
    stderr = ("2026-12-05T03:00:00Z|00001|ovs_vsctl|WARN|something\n"
              "ovs-vsctl: ovs-vsctl: cannot create a port named qvo1 because an interface "
              "named qvo1 already exists on bridge br-op\n")
    assert database_said(stderr) == ("ovs-vsctl: cannot create a port named qvo1 because an "
                                     "interface named qvo1 already exists on bridge br-op")


def test_a_long_cause_is_cut() -> None:
    said = database_said("x" * 5000)
    assert len(said) == CAUSE_LIMIT
    assert said.endswith("…")


class _Step:
    def __init__(self, device: str) -> None:
        self.device = device


def test_a_batch_names_three_devices_then_how_many_more() -> None:
    batch = _Transaction([_Step(f"qvo{i}") for i in range(30)])  # type: ignore[list-item]
    assert str(batch) == "30 steps in one request (qvo0, qvo1, qvo2 and 27 more)"
    assert str(_Transaction([_Step("a"), _Step("b")])) == (  # type: ignore[list-item]
        "2 steps in one request (a, b)")
