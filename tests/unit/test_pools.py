"""NIC pools (vifplug/pools.py) and the hook's allocation and release: exhaustion, release,
least-used choice, concurrent allocation from 8 processes that never share a passthrough NIC,
a crash between taking the lock and writing, and a state file rebuilt from running guests."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

from vifplug import GenericVIFDriver, load_vifs
from vifplug.hook import main as hook
from vifplug.netmap import DirectNetwork, NetworkMapError, load_network_map
from vifplug.pools import (
    Holder,
    PoolExhausted,
    PoolState,
    allocate,
    load,
    rebuild,
    release,
)

PASS = DirectNetwork("green", "", "passthrough", pool=("eth10", "eth11"))
SHARED = DirectNetwork("blue", "", "vepa", pool=("eth20", "eth21", "eth22"))
QBH = DirectNetwork("red", "", "vepa", qbh_profile_id="finance", pool=("eth30",))


def test_an_exclusive_pool_hands_each_nic_out_once_then_refuses_naming_the_holders() -> None:
    state = PoolState()
    assert state.choose(PASS, Holder("a", "m1")) == "eth10"
    assert state.choose(PASS, Holder("b", "m2")) == "eth11"
    with pytest.raises(PoolExhausted) as raised:
        state.choose(PASS, Holder("c", "m3"))
    assert str(raised.value) == "pool of network green exhausted: eth10 (a), eth11 (b)"
    assert state.release("a") == [("green", "eth10")]
    assert state.choose(PASS, Holder("c", "m3")) == "eth10"


def test_asking_again_gives_the_same_nic() -> None:
    state = PoolState()
    assert state.choose(PASS, Holder("a", "m1")) == "eth10"
    assert state.choose(PASS, Holder("a", "m1")) == "eth10"
    assert state.networks["green"]["eth10"] == [Holder("a", "m1")]


def test_a_qbh_profile_makes_a_pool_exclusive() -> None:
    assert QBH.exclusive
    state = PoolState()
    state.choose(QBH, Holder("a", "m1"))
    with pytest.raises(PoolExhausted):
        state.choose(QBH, Holder("b", "m2"))


def test_a_shared_pool_takes_the_least_used_nic_in_pool_order() -> None:
    state = PoolState()
    got = [state.choose(SHARED, Holder(f"g{i}", f"m{i}")) for i in range(7)]
    assert got == ["eth20", "eth21", "eth22", "eth20", "eth21", "eth22", "eth20"]
    state.release("g1")
    assert state.choose(SHARED, Holder("h", "m")) == "eth21"


def test_state_round_trips_and_a_bad_file_says_how_to_fix_it(tmp_path: Path) -> None:
    path = tmp_path / "pools.json"
    assert allocate(PASS, Holder("a", "m1"), str(path)) == "eth10"
    assert load(str(path)) == PoolState({"green": {"eth10": [Holder("a", "m1")]}})
    assert release("a", str(path)) == [("green", "eth10")]
    assert load(str(path)) == PoolState()
    path.write_text("{not json")
    with pytest.raises(Exception, match=r"not a vifplug pool state .*`vifplug pools rebuild`"):
        load(str(path))


def test_release_without_a_state_file_makes_none(tmp_path: Path) -> None:
    path = tmp_path / "pools.json"
    assert release("a", str(path)) == []
    assert not path.exists()


ALLOCATE = """
import sys
from vifplug.netmap import DirectNetwork
from vifplug.pools import Holder, PoolExhausted, allocate
network = DirectNetwork("green", "", "passthrough", pool=("eth10", "eth11"))
sys.stdin.readline()  # all eight start together
try:
    print(allocate(network, Holder(sys.argv[1], sys.argv[1]), sys.argv[2]))
except PoolExhausted:
    print("refused")
"""

CRASH = """
import signal, sys
from vifplug.pools import locked
with locked(sys.argv[1]):
    print("locked", flush=True)
    signal.pause()  # killed here: between taking the lock and writing
"""


def _python(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", code, *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)


def test_eight_processes_at_once_never_share_a_passthrough_nic(tmp_path: Path) -> None:
    path = str(tmp_path / "pools.json")
    children = [_python(ALLOCATE, f"g{i}", path) for i in range(8)]
    for child in children:  # release them all at once
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    results = [child.communicate(timeout=60)[0].strip() for child in children]
    assert sorted(results) == ["eth10", "eth11", *["refused"] * 6]  # each NIC once
    holders = load(path).networks["green"]
    assert sorted(holders) == ["eth10", "eth11"]
    assert all(len(h) == 1 for h in holders.values())


def test_a_crash_between_lock_and_write_leaves_the_state_and_frees_the_lock(
        tmp_path: Path) -> None:
    path = str(tmp_path / "pools.json")
    allocate(PASS, Holder("a", "m1"), path)
    before = Path(path).read_text()
    child = _python(CRASH, path)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "locked"
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=30)
    assert Path(path).read_text() == before  # nothing half-written
    assert allocate(PASS, Holder("b", "m2"), path) == "eth11"  # the kernel freed the lock
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".pools.")]


# --- the map and the hook -------------------------------------------------------------------------

MAP = """\
[networks.green]
switch = "direct"
mode = "passthrough"
interfaces = ["vp-pool0", "vp-pool1"]
"""


def test_the_map_takes_a_pool_and_refuses_bad_ones(tmp_path: Path) -> None:
    path = tmp_path / "networks.toml"
    path.write_text(MAP)
    green = load_network_map(path).networks["green"]
    assert isinstance(green, DirectNetwork)
    assert green.pool == ("vp-pool0", "vp-pool1")
    assert green.exclusive
    for text, message in [
        (MAP.replace('"vp-pool1"', '"vp-pool0"'),
         "4: networks.green.interfaces: NIC vp-pool0 is listed twice"),
        (MAP + 'interface = "eth1"\n',
         "4: networks.green.interfaces: give 'interface' (one NIC) or 'interfaces'"),
        (MAP.replace('["vp-pool0", "vp-pool1"]', "[]"),
         "4: networks.green.interfaces: must be a non-empty array of NIC names (got [])"),
    ]:
        path.write_text(text)
        with pytest.raises(NetworkMapError) as raised:
            load_network_map(path)
        assert str(raised.value).startswith(f"{path}:{message}"), str(raised.value)


def _domain(name: str, mac: str) -> bytes:
    (vif,) = load_vifs({"id": "0f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f", "vif_type": "direct",
                        "mac": mac, "network": {"name": "green", "interface": "eth0"},
                        "direct": {"mode": "passthrough"}})
    driver = GenericVIFDriver()
    root = etree.Element("domain", type="kvm")
    etree.SubElement(root, "name").text = name
    etree.SubElement(root, "metadata").append(driver.metadata_xml([vif]))
    etree.SubElement(root, "devices").append(driver.interface_xml(vif))
    return etree.tostring(root)


def _hook(tmp_path: Path, *argv: str, stdin: bytes = b"") -> tuple[int, str, str]:
    networks = tmp_path / "networks.toml"
    networks.write_text("strict = false\n" + MAP)  # no such NICs on this machine
    out, err = io.StringIO(), io.StringIO()
    code = hook(list(argv), io.BytesIO(stdin), out, err, networks=str(networks))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def pools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "pools.json"
    monkeypatch.setenv("VIFPLUG_POOLS", str(path))
    return path


def test_arrivals_get_free_nics_then_one_is_refused_and_release_frees(
        tmp_path: Path, pools: Path) -> None:
    nics = []
    for name, mac in (("a", "fa:16:3e:00:00:0a"), ("b", "fa:16:3e:00:00:0b")):
        code, out, err = _hook(tmp_path, name, "migrate", "begin", "-",
                               stdin=_domain(name, mac))
        assert (code, err) == (0, "")
        nics.append(etree.fromstring(out.encode()).find("devices/interface/source").get("dev"))
    assert nics == ["vp-pool0", "vp-pool1"]

    code, out, err = _hook(tmp_path, "c", "migrate", "begin", "-",
                           stdin=_domain("c", "fa:16:3e:00:00:0c"))
    assert (code, out) == (1, "")
    assert err == ("vifplug: interface fa:16:3e:00:00:0c: pool of network green exhausted: "
                   "vp-pool0 (a), vp-pool1 (b); refused\n")

    assert _hook(tmp_path, "a", "release", "end", "-") == (0, "", "")
    code, out, _ = _hook(tmp_path, "c", "migrate", "begin", "-",
                         stdin=_domain("c", "fa:16:3e:00:00:0c"))
    assert code == 0
    assert etree.fromstring(out.encode()).find("devices/interface/source").get("dev") \
        == "vp-pool0"
    assert rebuild([("b", _hook(tmp_path, "b", "migrate", "begin", "-",
                                stdin=_domain("b", "fa:16:3e:00:00:0b"))[1]),
                    ("c", out)], load_network_map(tmp_path / "networks.toml")) == load(
        str(pools))


def test_a_refused_arrival_keeps_no_nic(tmp_path: Path, pools: Path) -> None:
    """Allocated, then refused by a later check (here: an unknown network on another NIC of
    the same guest): the NIC is given back."""
    networks = tmp_path / "networks.toml"
    domain = etree.fromstring(_domain("a", "fa:16:3e:00:00:0a"))
    entry = domain.find("metadata")[0][0]
    second = etree.SubElement(domain.find("metadata")[0], entry.tag, dict(entry.attrib))
    second.set("mac", "fa:16:3e:00:00:0d")
    second.set("network", "nope")
    iface = etree.SubElement(domain.find("devices"), "interface", type="bridge")
    etree.SubElement(iface, "mac", address="fa:16:3e:00:00:0d")
    etree.SubElement(iface, "source", bridge="x")
    networks.write_text("strict = false\n" + MAP)
    out, err = io.StringIO(), io.StringIO()
    assert hook(["a", "migrate", "begin", "-"], io.BytesIO(etree.tostring(domain)), out, err,
                networks=str(networks)) == 1
    assert "network 'nope' is not defined" in err.getvalue()
    assert load(str(pools)) == PoolState()


def test_hook_check_says_when_the_pool_has_no_free_nic(tmp_path: Path) -> None:
    """``vifplug hook check`` chooses on a copy of the state (nothing allocated) and reports a
    full pool as one of its problem lines."""
    from vifplug.cli import main

    networks = tmp_path / "networks.toml"
    networks.write_text(MAP)
    state = tmp_path / "pools.json"
    domain = tmp_path / "domain.xml"
    domain.write_bytes(_domain("c", "fa:16:3e:00:00:0c"))
    allocate(load_network_map(networks).networks["green"], Holder("a", "m1"), str(state))
    before = state.read_text()

    def check() -> list[str]:
        out = io.StringIO()
        assert main(["hook", "check", str(domain), "--networks", str(networks), "--pools",
                     str(state)], out, io.StringIO()) == 1  # the pool NICs do not exist here
        return out.getvalue().splitlines()

    assert not [line for line in check() if "exhausted" in line]  # vp-pool1 is free
    allocate(load_network_map(networks).networks["green"], Holder("b", "m2"), str(state))
    full = state.read_text()
    assert f"{domain}: interface fa:16:3e:00:00:0c: pool of network green exhausted: " \
           "vp-pool0 (a), vp-pool1 (b)" in check()
    assert state.read_text() == full != before  # the check allocated nothing
