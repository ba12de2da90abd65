"""The migration preflight's device checks (vifplug/preflight.py) on a stand-in /sys/class/net
and a fixed OVSDB view (the seams), and the hook's early refusal built on them. The same checks
on a real namespace and a real OVSDB: tests/functional/test_preflight_real.py; a real live
migration refused before its copy: tests/integration/test_migration.py."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from lxml import etree

from vifplug import GenericVIFDriver, load_vifs
from vifplug.hook import main as hook
from vifplug.hook import rewrite
from vifplug.netmap import load_network_map
from vifplug.preflight import OvsdbView, device_problems

RED = {"id": "0f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f", "vif_type": "bridge",
       "mac": "fa:16:3e:00:00:01", "network": {"name": "red", "bridge": "red"}, "mtu": 1500}
BLUE = {"id": "1f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f", "vif_type": "bridge",
        "mac": "fa:16:3e:00:00:02", "network": {"name": "blue", "bridge": "blue"}}
GREEN = {"id": "2f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f", "vif_type": "bridge",
         "mac": "fa:16:3e:00:00:03", "network": {"name": "green", "bridge": "green"}}
MAP = """\
[networks.red]
switch = "legacy"
bridge = "br-red"

[networks.blue]
switch = "ovs"
bridge = "br-int"
vlan = 100

[networks.green]
switch = "direct"
interface = "eth9"
"""


def domain(*vifs: dict[str, object]) -> str:
    driver = GenericVIFDriver()
    loaded = [load_vifs(v)[0] for v in vifs]
    root = etree.Element("domain", type="kvm")
    etree.SubElement(root, "name").text = "g"
    etree.SubElement(root, "metadata").append(driver.metadata_xml(loaded))
    devices = etree.SubElement(root, "devices")
    devices.extend(driver.interface_xml(v) for v in loaded)
    return etree.tostring(root, encoding="unicode")


@pytest.fixture
def host_map(tmp_path: Path) -> object:
    path = tmp_path / "networks.toml"
    path.write_text(MAP)
    return load_network_map(path)


def sysfs(tmp_path: Path, devices: dict[str, tuple[int, bool]]) -> str:
    """A stand-in /sys/class/net: name -> (mtu, is a Linux bridge)."""
    root = tmp_path / "sys"
    for name, (mtu, bridge) in devices.items():
        (root / name).mkdir(parents=True)
        (root / name / "mtu").write_text(f"{mtu}\n")
        if bridge:
            (root / name / "bridge").mkdir()
    root.mkdir(exist_ok=True)
    return str(root)


VIEW = OvsdbView(frozenset({"br-int"}), {})


def check(host_map: object, tmp_path: Path, devices: dict[str, tuple[int, bool]], *vifs: dict,
          view: OvsdbView | Exception = VIEW) -> list[str]:
    reads: list[int] = []

    def read() -> OvsdbView:
        reads.append(1)
        if isinstance(view, Exception):
            raise view
        return view

    problems = device_problems(rewrite(domain(*vifs), host_map), host_map,
                               sysfs=sysfs(tmp_path, devices), ovsdb=read)
    assert len(reads) <= 1  # OVSDB asked once at most
    return problems


def test_ready_when_everything_exists(host_map: object, tmp_path: Path) -> None:
    assert check(host_map, tmp_path, {"br-red": (1500, True), "eth9": (1500, False)},
                 RED, BLUE, GREEN) == []


@pytest.mark.parametrize(("devices", "view", "expected"), [
    ({"eth9": (1500, False)}, VIEW,
     ["interface fa:16:3e:00:00:01: network 'red': Linux bridge br-red does not exist on this "
      "host"]),
    ({"br-red": (1500, False), "eth9": (1500, False)}, VIEW,
     ["interface fa:16:3e:00:00:01: network 'red': Linux bridge br-red is not a Linux bridge "
      "on this host"]),
    ({"br-red": (1500, True)}, VIEW,
     ["interface fa:16:3e:00:00:03: network 'green': NIC eth9 does not exist on this host"]),
    ({"br-red": (1500, True), "eth9": (1500, False)}, OvsdbView(frozenset({"br-ex"}), {}),
     ["interface fa:16:3e:00:00:02: network 'blue': OVS bridge br-int does not exist on this "
      "host (no Bridge row in OVSDB)"]),
    ({"br-red": (1500, True), "eth9": (1500, False)}, OSError("[Errno 2] nothing there"),
     ["interface fa:16:3e:00:00:02: network 'blue': OVS bridge br-int: cannot read OVSDB "
      "([Errno 2] nothing there)"]),
    ({"br-red": (1400, True), "eth9": (1500, False)}, VIEW,
     ["interface fa:16:3e:00:00:01: network 'red': the guest's MTU 1500 is larger than "
      "br-red's MTU, 1400"]),
])
def test_each_problem_is_one_line_naming_interface_network_and_device(
        devices: dict[str, tuple[int, bool]], view: OvsdbView | Exception, expected: list[str],
        host_map: object, tmp_path: Path) -> None:
    assert check(host_map, tmp_path, devices, RED, BLUE, GREEN, view=view) == expected


def test_the_maps_mtu_wins_over_the_devices(tmp_path: Path) -> None:
    path = tmp_path / "networks.toml"
    path.write_text('[networks.red]\nswitch = "legacy"\nbridge = "br-red"\nnic = "eth1"\n'
                    "mtu = 1400\n")
    host_map = load_network_map(path)
    assert check(host_map, tmp_path, {"br-red": (9000, True)}, RED) == [
        "interface fa:16:3e:00:00:01: network 'red': the guest's MTU 1500 is larger than the "
        "map's mtu, 1400"]


def test_ovsdb_is_not_asked_without_an_ovs_network(host_map: object, tmp_path: Path) -> None:
    assert check(host_map, tmp_path, {"br-red": (1500, True)}, RED,
                 view=AssertionError("asked")) == []


# --- the hook's early refusal ---------------------------------------------------------------------


def run_hook(op: str, text: str, tmp_path: Path, map_text: str) -> tuple[int, str, str]:
    path = tmp_path / "hook.toml"
    path.write_text(map_text)
    out, err = io.StringIO(), io.StringIO()
    code = hook(["g", op, "begin", "-"], io.BytesIO(text.encode()), out, err,
                networks=str(path))
    return code, out.getvalue(), err.getvalue()


NO_SUCH_BRIDGE = '[networks.red]\nswitch = "legacy"\nbridge = "vp-no-such-br0"\n'


def test_the_hook_refuses_a_migration_to_a_missing_bridge_in_one_line(tmp_path: Path) -> None:
    code, out, err = run_hook("migrate", domain(RED), tmp_path, NO_SUCH_BRIDGE)
    assert (code, out) == (1, "")
    assert err == ("vifplug: interface fa:16:3e:00:00:01: network 'red': Linux bridge "
                   "vp-no-such-br0 does not exist on this host; refused before the migration "
                   f"copies memory (strict = false in {tmp_path / 'hook.toml'} skips these "
                   "checks)\n")


def test_strict_false_only_rewrites(tmp_path: Path) -> None:
    code, out, err = run_hook("migrate", domain(RED), tmp_path, "strict = false\n" +
                              NO_SUCH_BRIDGE)
    assert (code, err) == (0, "")
    assert "vp-no-such-br0" in out


def test_restore_is_not_checked(tmp_path: Path) -> None:
    """A restore happens on the host the guest was saved on (or one its operator chose);
    only an incoming migration is refused early."""
    code, _, err = run_hook("restore", domain(RED), tmp_path, NO_SUCH_BRIDGE)
    assert (code, err) == (0, "")


def test_the_refusal_counts_the_other_problems(tmp_path: Path) -> None:
    code, _, err = run_hook("migrate", domain(RED, GREEN), tmp_path, NO_SUCH_BRIDGE +
                            '[networks.green]\nswitch = "direct"\ninterface = "vp-no-nic0"\n')
    assert code == 1
    assert "(and 1 more: see `vifplug hook check`)" in err
    assert err.count("\n") == 1
