"""Every rule of VIF_FORMAT.md, broken once: tests/data/bad/*.json must be refused with exit 2,
nothing on stdout, and a message naming the file, the exact JSON path and what was expected.

The table below maps each bad file to that path and a fragment of the message. A new file in
tests/data/bad/ must be added to it (``test_every_bad_file_is_in_the_table``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest

import vifplug

BAD = Path(__file__).resolve().parents[1] / "data" / "bad"
#: The run_module fixture (conftest.py): runs ``python -m vifplug ARGS``, returns a Result
#: with ``code``, ``stdout`` and ``stderr``.
Runner = Callable[..., Any]


class Bad(NamedTuple):
    """One bad file: where the problem is and what the message says."""

    path: str  # the exact JSON path the error must name
    fragment: str  # a piece of the message (what was expected)
    shape: bool = False  # the JSON Schema alone must reject it (unknown key, required, range, type)
    bug: str | None = None  # a rule vifplug does not enforce yet (the case is a strict xfail)


REQUIRED = "required"
RESERVED = "must not start with a prefix libvirt reserves"

CASES: dict[str, Bad] = {
    # --- missing required keys: top level and `network` ---
    "missing-id.json": Bad("$.id", REQUIRED, shape=True),
    "missing-vif-type.json": Bad("$.vif_type", REQUIRED, shape=True),
    "missing-mac.json": Bad("$.mac", REQUIRED, shape=True),
    "missing-network.json": Bad("$.network", REQUIRED, shape=True),
    "missing-network-name.json": Bad("$.network.name", REQUIRED, shape=True),
    # --- missing required keys per vif_type ---
    "ovs-missing-interface-id.json": Bad(
        "$.ovs.interface_id", "required when vif_type is 'ovs'", shape=True),
    "ovs-empty-ovs.json": Bad("$.ovs.interface_id", REQUIRED, shape=True),
    "ovs-missing-bridge.json": Bad(
        "$.network.bridge", "required when vif_type is 'ovs'", shape=True),
    "bridge-missing-bridge.json": Bad(
        "$.network.bridge", "required when vif_type is 'bridge'", shape=True),
    "direct-missing-interface.json": Bad(
        "$.network.interface", "required when vif_type is 'direct'", shape=True),
    "qbg-missing-interface.json": Bad(
        "$.network.interface", "required when vif_type is '802.1qbg'", shape=True),
    "qbh-missing-interface.json": Bad(
        "$.network.interface", "required when vif_type is '802.1qbh'", shape=True),
    "qbg-missing-qbg.json": Bad("$.qbg", "required when vif_type is '802.1qbg'", shape=True),
    "qbg-missing-instance-id.json": Bad("$.qbg.instance_id", REQUIRED, shape=True),
    "qbh-missing-qbh.json": Bad("$.qbh", "required when vif_type is '802.1qbh'", shape=True),
    "vhostuser-missing-vhostuser.json": Bad(
        "$.vhostuser", "required when vif_type is 'vhostuser'", shape=True),
    "vhostuser-missing-socket.json": Bad("$.vhostuser.socket", REQUIRED, shape=True),
    "hostdev-missing-hostdev.json": Bad(
        "$.hostdev", "required when vif_type is 'hostdev'", shape=True),
    # --- unknown keys (a typo must not be silently ignored) ---
    "unknown-key-top.json": Bad("$.mtus", "unknown key (did you mean 'mtu'?)", shape=True),
    "unknown-key-network.json": Bad(
        "$.network.brigde", "unknown key (did you mean 'bridge'?)", shape=True),
    "unknown-key-ovs.json": Bad(
        "$.ovs.interfaceid", "unknown key (did you mean 'interface_id'?)", shape=True),
    "unknown-key-bandwidth-rate.json": Bad(
        "$.bandwidth.inbound.averge", "unknown key (did you mean 'average'?)", shape=True),
    "unknown-key-with-bracket.json": Bad(
        "$['mtu[0]']", "unknown key", shape=True),
    "vif-type-unknown.json": Bad("$.vif_type", "must be one of 'bridge', 'ovs'", shape=True),
    "plug-unknown.json": Bad("$.plug", "must be one of 'hybrid', 'virtualport'", shape=True),
    "direct-mode-unknown.json": Bad("$.direct.mode", "must be one of 'vepa'", shape=True),
    # --- bad types (strict: no "1500" for 1500, no 1 for true) ---
    "type-mtu-string.json": Bad("$.mtu", "must be an integer", shape=True),
    "type-vlan-string.json": Bad("$.network.vlan", "must be an integer", shape=True),
    "type-filtered-int.json": Bad("$.filtered", "must be true or false", shape=True),
    "type-create-bridge-int.json": Bad(
        "$.network.create_bridge", "must be true or false", shape=True),
    "type-network-string.json": Bad("$.network", "must be an object", shape=True),
    # --- ranges ---
    "mtu-67.json": Bad("$.mtu", "must be at least 68", shape=True),
    "mtu-65536.json": Bad("$.mtu", "must be at most 65535", shape=True),
    "vlan-0.json": Bad("$.network.vlan", "must be at least 1", shape=True),
    "vlan-4095.json": Bad("$.network.vlan", "must be at most 4094", shape=True),
    "queues-0.json": Bad("$.queues", "must be at least 1", shape=True),
    "queues-257.json": Bad("$.queues", "must be at most 256", shape=True),
    "qbg-manager-id-256.json": Bad("$.qbg.manager_id", "must be at most 255", shape=True),
    "qbg-type-id-2-24.json": Bad("$.qbg.type_id", "must be at most 16777215", shape=True),
    "trunk-entry-4095.json": Bad("$.network.trunk[1]", "must be at most 4094", shape=True),
    "trunk-entry-0.json": Bad("$.network.trunk[0]", "must be at least 1", shape=True),
    "trunk-empty.json": Bad("$.network.trunk", "must hold at least one VLAN", shape=True),
    "trunk-repeated.json": Bad("$.network.trunk", "must not repeat a VLAN"),
    "bandwidth-average-0.json": Bad(
        "$.bandwidth.inbound.average", "must be at least 1", shape=True),
    "bandwidth-missing-average.json": Bad("$.bandwidth.outbound.average", REQUIRED, shape=True),
    "bandwidth-empty.json": Bad("$.bandwidth", "must give 'inbound' or 'outbound'"),
    # --- MAC and UUID ---
    "mac-format.json": Bad("$.mac", "must be a MAC address xx:xx:xx:xx:xx:xx"),
    "mac-multicast.json": Bad("$.mac", "must be a unicast MAC address"),
    "mac-all-zero.json": Bad("$.mac", "must not be the all-zero MAC address"),
    "id-not-uuid.json": Bad("$.id", "must be a UUID", shape=True),
    "ovs-interface-id-not-uuid.json": Bad("$.ovs.interface_id", "must be a UUID", shape=True),
    "qbg-instance-id-not-uuid.json": Bad("$.qbg.instance_id", "must be a UUID", shape=True),
    # --- device names: devname, network.bridge ---
    "devname-16-bytes.json": Bad("$.devname", "at most 15 bytes", shape=True),
    "devname-charset.json": Bad("$.devname", "only letters, digits, '_', '.' and '-'", shape=True),
    "devname-dot.json": Bad("$.devname", "not '.' or '..'"),
    "devname-dotdot.json": Bad("$.devname", "not '.' or '..'"),
    "devname-vnet.json": Bad("$.devname", RESERVED, shape=True),
    "devname-vif.json": Bad("$.devname", RESERVED, shape=True),
    "devname-macvtap.json": Bad("$.devname", RESERVED, shape=True),
    "devname-macvlan.json": Bad("$.devname", RESERVED, shape=True),
    "bridge-name-too-long.json": Bad("$.network.bridge", "at most 15 bytes", shape=True),
    # --- network name ---
    "network-name-empty.json": Bad("$.network.name", "must be 1 to 64 characters"),
    "network-name-65.json": Bad("$.network.name", "must be 1 to 64 characters"),
    "network-name-charset.json": Bad("$.network.name", "letters, digits, '_', '.' and '-'"),
    # --- network rules: create_*, vlan, trunk ---
    "create-vlan-without-interface.json": Bad(
        "$.network.create_vlan", "needs 'network.interface' and 'network.vlan'"),
    "create-vlan-without-vlan.json": Bad(
        "$.network.create_vlan", "needs 'network.interface' and 'network.vlan'"),
    "create-vlan-name-too-long.json": Bad(
        "$.network.create_vlan", "the VLAN device enp175s0f1np1.100 must be a device name of at "
        "most 15 bytes"),
    "create-bridge-on-ovs.json": Bad("$.network.create_bridge", "not used by vif_type 'ovs'"),
    "vlan-and-trunk.json": Bad("$.network.trunk", "cannot be combined with 'vlan'"),
    "trunk-on-bridge.json": Bad("$.network.trunk", "not used by vif_type 'bridge'"),
    "vlan-on-ethernet.json": Bad("$.network.vlan", "not used by vif_type 'ethernet'"),
    "vlan-on-vhostuser.json": Bad("$.network.vlan", "not used by vif_type 'vhostuser'"),
    "vlan-on-direct-vepa.json": Bad(
        "$.network.vlan", "needs direct mode 'passthrough' (a macvtap in mode 'vepa'"),
    "vlan-on-qbg-bridge-mode.json": Bad(
        "$.network.vlan", "needs direct mode 'passthrough' (a macvtap in mode 'bridge'"),
    "vlan-on-qbh-private-mode.json": Bad(
        "$.network.vlan", "needs direct mode 'passthrough' (a macvtap in mode 'private'"),
    # --- per-kind options: plug, queues, filter ---
    "plug-on-bridge.json": Bad("$.plug", "not used by vif_type 'bridge' (only 'ovs')"),
    "queues-e1000.json": Bad("$.queues", "needs model 'virtio' (got model 'e1000')"),
    "filter-on-direct.json": Bad("$.filter", "not used by vif_type 'direct'"),
    # --- issue 14: virtio ring tuning, coalesce, rom, backend paths, trust ---
    "virtio-rx-queue-size-300.json": Bad(
        "$.virtio.rx_queue_size", "must be a power of two from 256 to 1024", shape=True),
    "virtio-tx-queue-size-on-bridge.json": Bad(
        "$.virtio.tx_queue_size", "only for vif_type 'vhostuser'"),
    "virtio-e1000.json": Bad("$.virtio", "needs model 'virtio' (got model 'e1000')"),
    "virtio-empty.json": Bad(
        "$.virtio", "must give at least one of 'rx_queue_size'", shape=True),
    "virtio-packed-string.json": Bad("$.virtio.packed", "must be true or false", shape=True),
    "virtio-on-hostdev.json": Bad("$.virtio", "not used by vif_type 'hostdev'"),
    "coalesce-on-ethernet.json": Bad("$.coalesce", "not used by vif_type 'ethernet'"),
    "coalesce-on-direct.json": Bad("$.coalesce", "not used by vif_type 'direct'"),
    "coalesce-plug-manual.json": Bad("$.coalesce", "not with plug 'manual'"),
    "coalesce-negative.json": Bad("$.coalesce.rx_max_frames", "must be at least 0", shape=True),
    "rom-disabled-with-file.json": Bad(
        "$.rom.file", "cannot be combined with 'enabled': false"),
    "rom-file-relative.json": Bad("$.rom.file", "must be an absolute path", shape=True),
    "rom-empty.json": Bad("$.rom", "must give 'enabled': false, or 'file' and/or 'bar'"),
    "backend-relative.json": Bad("$.backend.tap", "must be an absolute path", shape=True),
    "backend-dotdot.json": Bad("$.backend.vhost", "without '.' or '..' components"),
    "backend-on-direct.json": Bad("$.backend", "not used by vif_type 'direct'"),
    "backend-empty.json": Bad(
        "$.backend", "must give at least one of 'tap', 'vhost'", shape=True),
    "trust-on-bridge.json": Bad("$.trust_guest_rx_filters", "not used by vif_type 'bridge'"),
    "trust-string.json": Bad(
        "$.trust_guest_rx_filters", "must be true or false", shape=True),
    "filter-plug-virtualport.json": Bad("$.filter", "not plug 'virtualport'"),
    "filter-plug-manual.json": Bad("$.filter", "not plug 'manual'"),
    "filter-name-bad.json": Bad("$.filter.name", "must be an nwfilter name"),
    "filter-parameter-name.json": Bad(
        "$.filter.parameters['IP address']", "parameter names are 1 to 64", shape=True),
    "filter-parameter-value.json": Bad(
        "$.filter.parameters.IP", "must be a string of letters, digits", shape=True),
    "filter-parameter-value-int.json": Bad(
        "$.filter.parameters.CTRL_IP_LEARNING", "must be a string", shape=True),
    # --- vhostuser ---
    "vhostuser-model-e1000.json": Bad("$.model", "must be 'virtio' for vif_type 'vhostuser'"),
    "vhostuser-socket-relative.json": Bad("$.vhostuser.socket", "must be an absolute path"),
    "vhostuser-socket-too-long.json": Bad("$.vhostuser.socket", "must be at most 107 bytes"),
    # --- hostdev ---
    "hostdev-bad-pci.json": Bad("$.hostdev.pci", "must be a PCI address DDDD:BB:SS.F"),
    "hostdev-pci-slot.json": Bad("$.hostdev.pci", "slot is at most 1f"),
    "hostdev-model.json": Bad("$.model", "not used by vif_type 'hostdev'"),
    "hostdev-mtu.json": Bad("$.mtu", "not used by vif_type 'hostdev'"),
    "hostdev-bandwidth.json": Bad("$.bandwidth", "not used by vif_type 'hostdev'"),
    # --- vdpa ---
    "vdpa-missing-vdpa.json": Bad("$.vdpa", "required when vif_type is 'vdpa'", shape=True),
    "vdpa-device-not-vhost-vdpa.json": Bad(
        "$.vdpa.device", "must be a vhost-vdpa device path like /dev/vhost-vdpa-0", shape=True),
    "vdpa-devname.json": Bad("$.devname", "not used by vif_type 'vdpa': a vDPA NIC has no host"),
    "vdpa-mtu.json": Bad("$.mtu", "not used by vif_type 'vdpa': the vDPA device's MTU"),
    "vdpa-model-e1000.json": Bad("$.model", "must be 'virtio' for vif_type 'vdpa'"),
    "vdpa-teaming.json": Bad("$.teaming", "not used by vif_type 'vdpa'"),
    # --- isolated ---
    "isolated-on-ovs.json": Bad("$.isolated", "not used by vif_type 'ovs' (only 'bridge')"),
    "isolated-not-bool.json": Bad("$.isolated", "must be true or false", shape=True),
    # --- teaming and alias ---
    "teaming-transient-on-bridge.json": Bad(
        "$.teaming.type", "must be 'persistent' for vif_type 'bridge'"),
    "teaming-persistent-on-hostdev.json": Bad(
        "$.teaming.type", "must be 'transient' for vif_type 'hostdev'"),
    "teaming-transient-without-persistent.json": Bad(
        "$.teaming.persistent", "required when type is 'transient'"),
    "teaming-e1000.json": Bad("$.teaming", "needs model 'virtio'"),
    "alias-without-ua.json": Bad("$.alias", "must be a libvirt user alias: 'ua-'", shape=True),
    "array-teaming-no-partner.json": Bad(
        "$[1].teaming.persistent", "no VIF of this file has alias 'ua-backup1'"),
    "array-teaming-mac-differs.json": Bad(
        "$[1].mac", "must be the MAC of its persistent partner $[0] (fa:16:3e:3a:4b:5c)"),
    "array-teaming-partner-not-persistent.json": Bad(
        "$[1].teaming.persistent", "names $[0], which has no teaming of type 'persistent'"),
    "array-teaming-persistent-alone.json": Bad(
        "$[0].teaming", "no hostdev VIF of this file names 'ua-backup0'"),
    "array-duplicate-alias.json": Bad("$[1].alias", "alias 'ua-backup0' is already used by $[0]"),
    # --- the file itself ---
    "duplicate-key.json": Bad("$.mac", "key given more than once"),
    "duplicate-key-nested.json": Bad("$.network.vlan", "key given more than once"),
    "invalid-json.json": Bad("$", "not valid JSON"),
    "not-utf8.json": Bad("$", "not UTF-8"),
    "empty-array.json": Bad("$", "non-empty array", shape=True),
    "top-level-number.json": Bad("$", "expected a VIF object", shape=True),
    "top-level-string.json": Bad("$", "expected a VIF object", shape=True),
    # --- arrays: errors at an index, and values that must be unique in a file ---
    "array-bad-mac-at-2.json": Bad("$[2].mac", "must be a MAC address"),
    "array-unknown-key-at-2.json": Bad(
        "$[2].qbg.managerid", "unknown key (did you mean 'manager_id'?)", shape=True),
    "array-element-not-object.json": Bad("$[2]", "must be an object", shape=True),
    "array-duplicate-mac.json": Bad("$[1].mac", "is already used by $[0]"),
    "array-duplicate-id.json": Bad("$[2].id", "is already used by $[1]"),
    "array-duplicate-devname.json": Bad("$[1].devname",
                                        "host device 'tap0f6d3c1e-5b' is already used by $[0]"),
}


def _params(*, with_bugs: bool = True) -> list[Any]:
    params = []
    for name, bad in sorted(CASES.items()):
        marks = []
        if with_bugs and bad.bug:
            marks.append(pytest.mark.xfail(strict=True, reason=f"bug: {bad.bug}"))
        params.append(pytest.param(name, bad, id=name.removesuffix(".json"), marks=marks))
    return params


def _bad_lines(result: Any, source: str, path: str) -> list[str]:
    """The stderr lines ``<source>: <path>: ...`` (exactly that path, not a longer one)."""
    prefix = f"{source}: {path}: "
    return [line for line in result.stderr.splitlines() if line.startswith(prefix)]


# --- the table and the directory agree ----------------------------------------------------------


def test_every_bad_file_is_in_the_table() -> None:
    on_disk = {p.name for p in BAD.iterdir() if p.is_file()}
    assert on_disk - set(CASES) == set(), "bad files missing from CASES"
    assert set(CASES) - on_disk == set(), "CASES names files that do not exist"


def test_the_suite_is_big_enough() -> None:
    assert len(list(BAD.glob("*.json"))) >= 25


def test_bad_files_are_real_files() -> None:
    for name in CASES:
        path = BAD / name
        assert path.is_file(), name
        assert not path.is_symlink(), name
        assert path.stat().st_size > 0, name


# --- each bad file through the CLI (a child process) and through load_vifs ----------------------


@pytest.mark.parametrize("command", ["validate", "render"])
@pytest.mark.parametrize(("name", "bad"), _params())
def test_cli_refuses_bad_file(run_module: Runner, command: str, name: str, bad: Bad) -> None:
    path = BAD / name
    result = run_module(command, str(path))
    assert result.code == 2, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = _bad_lines(result, str(path), bad.path)
    assert lines, f"no line '{path}: {bad.path}: ...' in stderr:\n{result.stderr}"
    assert any(bad.fragment in line for line in lines), result.stderr


@pytest.mark.parametrize(("name", "bad"), _params())
def test_load_vifs_refuses_bad_file(name: str, bad: Bad) -> None:
    path = BAD / name
    with pytest.raises(vifplug.InvalidVifError) as info:
        vifplug.load_vifs(path)
    error = info.value
    assert isinstance(error, ValueError)  # errors.py: bad input is also a ValueError
    assert error.source == str(path)
    messages = [message for where, message in error.problems if where == bad.path]
    assert messages, f"{bad.path} not among {error.problems}"
    assert any(bad.fragment in message for message in messages), error.problems
    assert f"{path}: {bad.path}: " in str(error)


@pytest.mark.parametrize(
    ("name", "bad"), [p for p in _params(with_bugs=False) if p.values[1].shape])
def test_schema_rejects_shape_errors(schema_validator: Any, name: str, bad: Bad) -> None:
    """Unknown keys, required keys (also per vif_type), ranges and types are in the schema."""
    data = json.loads((BAD / name).read_text())
    assert not schema_validator.is_valid(data), f"the schema accepts {name}"


def test_there_are_shape_cases_of_every_kind() -> None:
    shape = {name for name, bad in CASES.items() if bad.shape}
    for prefix in ("missing-", "unknown-key-", "type-", "mtu-", "vlan-", "queues-", "qbg-"):
        assert any(name.startswith(prefix) for name in shape), prefix


def test_trunk_out_of_range_reports_only_the_entry() -> None:
    with pytest.raises(vifplug.InvalidVifError) as info:
        vifplug.load_vifs(BAD / "trunk-entry-0.json")
    assert [where for where, _ in info.value.problems] == ["$.network.trunk[0]"]


def test_array_problems_name_only_the_broken_element() -> None:
    with pytest.raises(vifplug.InvalidVifError) as info:
        vifplug.load_vifs(BAD / "array-bad-mac-at-2.json")
    assert [where for where, _ in info.value.problems] == ["$[2].mac"]


def test_every_problem_is_reported_not_just_the_first(tmp_path: Path) -> None:
    data = json.loads((BAD / "mtu-67.json").read_text())
    data["network"]["vlan"] = 5000
    data["mac"] = "01:00:5e:00:00:01"
    path = tmp_path / "three-problems.json"
    path.write_text(json.dumps(data))
    with pytest.raises(vifplug.InvalidVifError) as info:
        vifplug.load_vifs(path)
    assert {where for where, _ in info.value.problems} == {"$.mtu", "$.network.vlan", "$.mac"}


# --- UnsupportedError: valid VIFs that the chosen options cannot connect --------------------------

OVS_VIRTUALPORT = {
    "id": "0f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f",
    "vif_type": "ovs",
    "mac": "fa:16:3e:12:34:56",
    "plug": "virtualport",
    "network": {"name": "blue", "bridge": "br-int"},
    "ovs": {"interface_id": "0f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f"},
}
BRIDGE = {
    "id": "8d9e0f1a-2b3c-4d5e-9f6a-7b8c9d0e1f2a",
    "vif_type": "bridge",
    "mac": "fa:16:3e:8d:9e:0f",
    "network": {"name": "red", "bridge": "red"},
}


@pytest.fixture
def forced_virtualport(tmp_path: Path) -> Path:
    path = tmp_path / "forced-virtualport.json"
    path.write_text(json.dumps(OVS_VIRTUALPORT))
    return path


@pytest.fixture
def forced_virtualport_array(tmp_path: Path) -> Path:
    path = tmp_path / "forced-virtualport-array.json"
    path.write_text(json.dumps([BRIDGE, OVS_VIRTUALPORT]))
    return path


@pytest.mark.parametrize("command", ["validate", "render", "explain"])
def test_forced_virtualport_on_old_libvirt(run_module: Runner, forced_virtualport: Path,
                                           command: str) -> None:
    result = run_module(command, "--libvirt-version", "0.9.10", str(forced_virtualport))
    assert result.code == 2, result.stderr
    assert result.stdout == ""
    lines = _bad_lines(result, str(forced_virtualport), "$.plug")
    assert lines, result.stderr
    assert "needs libvirt >= 0.9.11" in lines[0]


def test_forced_virtualport_on_new_enough_libvirt(run_module: Runner,
                                                  forced_virtualport: Path) -> None:
    result = run_module("validate", "--libvirt-version", "0.9.11", str(forced_virtualport))
    assert (result.code, result.stderr) == (0, "")
    assert "ovs-virtualport" in result.stdout


@pytest.mark.parametrize("command", ["validate", "render"])
def test_forced_virtualport_in_an_array(run_module: Runner, forced_virtualport_array: Path,
                                        command: str) -> None:
    result = run_module(command, "--libvirt-version", "0.9.10", str(forced_virtualport_array))
    assert result.code == 2, result.stderr
    assert result.stdout == ""
    assert _bad_lines(result, str(forced_virtualport_array), "$[1].plug"), result.stderr
    assert "$[0]" not in result.stderr


@pytest.mark.parametrize("command", ["validate", "render", "explain"])
def test_bad_libvirt_version(run_module: Runner, command: str) -> None:
    result = run_module(command, "--libvirt-version", "banana", "examples/bridge.json")
    assert result.code == 2, result.stderr
    assert result.stdout == ""
    assert "--libvirt-version" in result.stderr
    assert "'banana'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["validate", "render", "explain"])
def test_missing_file(run_module: Runner, tmp_path: Path, command: str) -> None:
    missing = tmp_path / "no-such-vif.json"
    result = run_module(command, str(missing))
    assert result.code == 2, result.stderr
    assert result.stdout == ""
    assert f"cannot read {missing}" in result.stderr
    assert "Traceback" not in result.stderr
