"""``vifplug audit`` and ``gc`` over the NIC pools' state file (issue 13: "vifplug's lock and
state files"): a holding no running guest interface uses is an orphan, a running guest on a pool
NIC the file does not record is a mismatch; gc releases / records them in the file (under its
lock, against the file as it is then) and never touches a device for them."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from vifplug import pools
from vifplug.audit import Domain, DomainInterface, HostLink, Inventory, PoolHolding, audit
from vifplug.cli import main
from vifplug.gc import narrow, plan_gc, seen_now
from vifplug.netmap import load_network_map

NOW = 1_000_000.0
MAC_A, MAC_B = "fa:16:3e:00:00:0a", "fa:16:3e:00:00:0b"
MAP = """\
[networks.green]
switch = "direct"
mode = "passthrough"
interfaces = ["eth10", "eth11"]
"""


def on_pool(mac: str, nic: str) -> DomainInterface:
    return DomainInterface(mac, "direct", source_dev=nic, target="macvtap0", network="green")


def guest(name: str, *interfaces: DomainInterface, running: bool = True) -> Domain:
    return Domain(name, f"00000000-0000-4000-8000-00000000000{name[-1]}", running, interfaces)


def inventory(*holdings: PoolHolding) -> Inventory:
    links = (HostLink("eth10"), HostLink("eth11"), HostLink("eth99"), HostLink("macvtap0"))
    return Inventory("host", links, None, (), (),
                     pools=holdings, pools_path="/p/pools.json")


@pytest.fixture(scope="module")
def networks(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("map") / "networks.toml"
    path.write_text(MAP)
    return load_network_map(path).networks


HELD_A = PoolHolding("green", "eth10", "guest1", MAC_A)


def kinds(found: Any) -> list[tuple[str, str]]:
    return [(f.kind, f.subject) for f in found.findings]


def test_a_holding_of_a_running_guest_on_its_nic_is_clean(networks: Any) -> None:
    result = audit(inventory(HELD_A), (guest("guest1", on_pool(MAC_A, "eth10")),), networks)
    assert result.clean


@pytest.mark.parametrize(("domains", "why"), [
    ((), "domain guest1 is not running"),
    ((guest("guest1", on_pool(MAC_A, "eth10"), running=False),), "guest1 is not running"),
    ((guest("guest1", on_pool(MAC_B, "eth10")),), "no interface of domain guest1 has MAC"),
    ((guest("guest2", on_pool(MAC_A, "eth10")),), "domain guest1 is not running"),
], ids=["no domain", "defined, stopped", "other MAC", "another domain of that MAC"])
def test_a_stale_holding_is_an_orphan(networks: Any, domains: tuple[Domain, ...],
                                      why: str) -> None:
    result = audit(inventory(HELD_A), domains, networks)
    orphans = [f for f in result.findings if f.kind == "orphan"]
    assert [(f.subject, f.domain) for f in orphans] == [
        (f"pools.json:green/eth10/{MAC_A}", None)]
    assert why in orphans[0].summary
    assert orphans[0].evidence == {"pool": {"network": "green", "nic": "eth10",
                                            "domain": "guest1", "mac": MAC_A}}


def test_a_guest_on_the_other_nic_is_an_orphan_and_a_mismatch(networks: Any) -> None:
    result = audit(inventory(HELD_A), (guest("guest1", on_pool(MAC_A, "eth11")),), networks)
    assert kinds(result) == [("orphan", f"pools.json:green/eth10/{MAC_A}"),
                             ("mismatch", f"pools.json:green/eth11/{MAC_A}")]
    mismatch = result.findings[1]
    assert mismatch.domain is not None
    assert mismatch.domain.name == "guest1"
    assert "does not record" in mismatch.summary


def test_unrecorded_needs_the_map_and_a_pool_nic(networks: Any) -> None:
    running = (guest("guest1", on_pool(MAC_A, "eth10")),
               guest("guest2", replace(on_pool(MAC_B, "eth99"))))
    assert kinds(audit(inventory(), running, networks)) == [
        ("mismatch", f"pools.json:green/eth10/{MAC_A}")]  # eth99 is not a pool NIC
    assert audit(inventory(), running, None).clean  # no map: which NICs pool is unknown


def test_no_state_file_no_pool_audit(networks: Any) -> None:
    result = audit(replace(inventory(), pools=None),
                   (guest("guest1", on_pool(MAC_A, "eth10")),), networks)
    assert result.clean


def test_gc_releases_and_records_once_old_enough(networks: Any) -> None:
    result = audit(inventory(HELD_A), (guest("guest1", on_pool(MAC_A, "eth11")),), networks)
    young = plan_gc(result, seen=seen_now(result, {}, NOW - 5), now=NOW, older_than=60)
    assert young.empty
    assert [s.reason for s in young.skipped] == ["seen 5 s ago, younger than --older-than 60 s"] * 2
    plan = plan_gc(result, seen=seen_now(result, {}, NOW - 600), now=NOW, older_than=60)
    assert plan.steps == ()
    assert plan.pool_release == (HELD_A,)
    assert plan.pool_record == (PoolHolding("green", "eth11", "guest1", MAC_A),)
    assert str(plan).splitlines()[1:] == [
        f"  1. release pool NIC eth10 of network green held by guest1 ({MAC_A})",
        f"  2. record pool NIC eth11 of network green as held by guest1 ({MAC_A})"]


def test_narrow_keeps_a_release_only_while_it_is_stale(networks: Any) -> None:
    result = audit(inventory(HELD_A), (), networks)
    plan = plan_gc(result, seen=seen_now(result, {}, NOW - 600), now=NOW)
    assert narrow(plan, result) is plan
    started = narrow(plan, audit(inventory(HELD_A), (guest("guest1", on_pool(MAC_A, "eth10")),),
                                 networks))
    assert started.pool_release == ()
    assert "started while gc planned" in started.skipped[-1].reason


def test_amend_works_on_the_file_as_it_is(tmp_path: Path) -> None:
    path = str(tmp_path / "pools.json")
    held = pools.Holder("guest1", MAC_A)
    pools.save(path, pools.PoolState({"green": {"eth10": [held]}}))
    # a release of a holding already gone, and a record already there, change nothing
    assert pools.amend([("green", "eth11", held)], [("green", "eth10", held)], path) == 0
    assert pools.amend([("green", "eth10", held)], [("green", "eth11", held)], path) == 1 + 1
    assert pools.load(path) == pools.PoolState({"green": {"eth11": [held]}})


# --- the CLI, with a real state file and stand-in host/libvirt edges --------------------------


@pytest.fixture
def edges(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    from vifplug.host import inventory as edge

    seen: dict[str, Any] = {"domains": ()}

    def read_inventory(host: Any, lock_dir: Any, pools: str | None = None) -> Inventory:
        holdings, path = edge.read_pools(pools)
        return replace(inventory(), pools=holdings, pools_path=path)

    monkeypatch.setattr(edge, "read_inventory", read_inventory)
    monkeypatch.setattr(edge, "read_domains", lambda uri: tuple(seen["domains"]))
    (tmp_path / "networks.toml").write_text(MAP)
    monkeypatch.setenv("VIFPLUG_NETWORKS", str(tmp_path / "networks.toml"))
    monkeypatch.setenv("VIFPLUG_POOLS", str(tmp_path / "pools.json"))
    return seen


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_cli_audit_then_gc_frees_a_passthrough_nic(edges: dict[str, Any], tmp_path: Path) -> None:
    state = tmp_path / "pools.json"
    gone, kept = pools.Holder("gone", MAC_A), pools.Holder("guest2", MAC_B)
    pools.save(str(state), pools.PoolState({"green": {"eth10": [gone], "eth11": [kept]}}))
    edges["domains"] = (guest("guest2", on_pool(MAC_B, "eth11")),)

    code, out, err = run("audit", "--json")
    assert (code, err) == (1, "")
    report = json.loads(out)
    assert report["checked"]["pools"] == {"path": str(state), "holdings": [
        {"network": "green", "nic": "eth10", "domain": "gone", "mac": MAC_A},
        {"network": "green", "nic": "eth11", "domain": "guest2", "mac": MAC_B}]}
    assert [(f["kind"], f["subject"]) for f in report["findings"]] == [
        ("orphan", f"pools.json:green/eth10/{MAC_A}")]

    seen = str(tmp_path / "seen.json")
    code, out, _ = run("gc", "--older-than", "0", "--state", seen)
    assert code == 0, out
    assert out.splitlines()[-1] == "done: 1 of 1 steps changed the host"
    assert pools.load(str(state)) == pools.PoolState({"green": {"eth11": [kept]}})
    code, out, _ = run("audit")
    assert code == 0, out
    assert out.startswith("clean: ")
    assert "1 pool holdings" in out


def test_cli_a_corrupt_state_file_is_named(edges: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "pools.json").write_text("{")
    code, _, err = run("audit")
    assert code == 1
    assert "pools.json: not a vifplug pool state" in err
    assert "vifplug pools rebuild" in err
