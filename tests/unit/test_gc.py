"""``vifplug gc``: the pure plan (vifplug/gc.py: what it removes, repairs and leaves alone, and
the age rule), its apply on the in-memory fakes (all or nothing: a failed deletion puts OVSDB
back), and the CLI over stand-in edges. On a real netns + OVS:
tests/functional/test_audit_real.py."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_audit import (
    DOM_UUID,
    HYBRID,
    MAP,
    QBR,
    QVB,
    QVO,
    QVO_PORT,
    TAP,
    VIF_ID,
    P,
    dom,
    host,
)
from vifplug.audit import AuditResult, Inventory, LockFile, OvsInterface, audit
from vifplug.cli import main
from vifplug.gc import plan_gc, seen_now
from vifplug.host import Host, StepFailed
from vifplug.host.apply import apply_gc
from vifplug.host.fake import FakeNetlink, FakeOvsdb
from vifplug.netmap import load_network_map
from vifplug.plan import DeleteLink, DeleteOvsPort, EnsureOvsPort

NOW = 1_000_000.0


@pytest.fixture(scope="module")
def networks(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("map") / "networks.toml"
    path.write_text(MAP)
    return load_network_map(path).networks


def planned(result: AuditResult, *, age: float = 3600.0, older_than: float = 60.0) -> Any:
    """The plan when every finding was first seen ``age`` seconds ago."""
    seen = seen_now(result, {}, NOW - age)
    return plan_gc(result, seen=seen, now=NOW, older_than=older_than)


ORPHANED = host(QBR, QVB, QVO, ovs=(QVO_PORT,))
RETAGGED = host(QBR, QVB, QVO, TAP, ovs=(replace(QVO_PORT, tag=200),))


def test_old_orphans_are_removed_ovsdb_first(networks: Any) -> None:
    plan = planned(audit(ORPHANED, (), networks))
    assert plan.steps == (DeleteOvsPort("qvo" + P), DeleteLink("qbr" + P), DeleteLink("qvb" + P),
                          DeleteLink("qvo" + P))
    (undo,) = plan.undo
    assert isinstance(undo, EnsureOvsPort)
    assert (undo.bridge, undo.port, undo.tag, undo.mtu_request) == ("br-int", "qvo" + P, 100,
                                                                    1500)
    assert dict(undo.external_ids)["vm-uuid"] == DOM_UUID
    assert plan.skipped == ()
    assert str(plan).splitlines()[:2] == ["gc plan:", f"  1. delete OVS port qvo{P} if it exists"]


def test_a_mismatch_is_repaired_in_place(networks: Any) -> None:
    plan = planned(audit(RETAGGED, (dom(HYBRID),), networks))
    (step,) = plan.steps
    assert step == EnsureOvsPort("br-int", "qvo" + P, external_ids=(), mtu_request=1500, tag=100,
                                 trunks=(), interface_type="")
    (undo,) = plan.undo
    assert isinstance(undo, EnsureOvsPort)
    assert undo.tag == 200


def test_iface_id_repair_and_its_undo(networks: Any) -> None:
    ids = dict(QVO_PORT.external_ids) | {"iface-id": "wrong"}
    inventory = host(QBR, QVB, QVO, TAP,
                     ovs=(replace(QVO_PORT, external_ids=tuple(sorted(ids.items()))),))
    plan = planned(audit(inventory, (dom(HYBRID),), networks))
    (step,), (undo,) = plan.steps, plan.undo
    assert isinstance(step, EnsureOvsPort)
    assert isinstance(undo, EnsureOvsPort)
    assert dict(step.external_ids) == {"iface-id": HYBRID.interfaceid}
    assert dict(undo.external_ids) == {"iface-id": "wrong"}


SKIPS: list[tuple[str, Inventory, tuple[Any, ...], float, str]] = [
    ("young orphans", ORPHANED, (), 10.0, "younger than --older-than 60 s"),
    ("foreign", host(ovs=(OvsInterface("tapdeadbeef01", "br-int", "u"),)), (), 3600.0,
     "foreign: never touched"),
    ("orphan whose domain exists",
     host(ovs=(replace(QVO_PORT, external_ids=(("attached-mac", "fa:16:3e:99:99:99"),
                                                ("vm-uuid", DOM_UUID))),)),
     (dom(replace(HYBRID, mac="fa:16:3e:00:00:09", source_bridge="qbrzzz", target="tapzzz",
                  interfaceid=None, network=None)),), 3600.0, "its domain guest1 exists"),
    ("missing", host(QVB, QVO, TAP, ovs=(QVO_PORT,)), (dom(HYBRID),), 3600.0,
     "plug the VIF again"),
    ("port on the wrong bridge", host(QBR, QVB, QVO, TAP,
                                      ovs=(replace(QVO_PORT, bridge="br-phy"),)),
     (dom(HYBRID),), 3600.0, "gc does not move ports"),
    ("a name vifplug never makes",
     host(ovs=(replace(QVO_PORT, name="vm port with spaces and far too long"),)), (), 3600.0,
     "not a name vifplug handles"),
    ("a plug holds the VIF's lock",
     replace(ORPHANED, locks=(LockFile("/l", "host", VIF_ID, NOW - 3600, held=True),)), (),
     3600.0, "holds its VIF's lock"),
    ("a lock file touched 5 s ago", replace(ORPHANED, locks=(LockFile("/l", "host", VIF_ID,
                                                                        NOW - 5),)),
     (), 3600.0, "seen 5 s ago"),
]


@pytest.mark.parametrize(("inventory", "domains", "age", "reason"),
                         [case[1:] for case in SKIPS], ids=[case[0] for case in SKIPS])
def test_what_gc_leaves_alone(inventory: Inventory, domains: tuple[Any, ...], age: float,
                              reason: str, networks: Any) -> None:
    plan = planned(audit(inventory, domains, networks), age=age)
    assert plan.steps == ()
    assert plan.skipped
    assert all(reason in skip.reason for skip in plan.skipped), plan.skipped
    assert "nothing to do" in str(plan)


def test_older_than_zero_acts_at_once(networks: Any) -> None:
    result = audit(ORPHANED, (), networks)
    plan = plan_gc(result, seen=seen_now(result, {}, NOW), now=NOW, older_than=0)
    assert len(plan.steps) == 4


def test_seen_now_keeps_first_sightings_and_forgets_the_gone(networks: Any) -> None:
    result = audit(ORPHANED, (), networks)
    first = seen_now(result, {"link:gone:7": 1.0}, 100.0)
    assert "link:gone:7" not in first
    assert set(first.values()) == {100.0}
    assert f"link:qbr{P}:10" in first
    assert f"ovs:qvo{P}:u-qvo" in first
    assert seen_now(result, first, 200.0) == first
    # a device made anew (another ifindex) is a new sighting
    again = audit(host(replace(QBR, index=99), QVB, QVO, ovs=(QVO_PORT,)), (), networks)
    assert seen_now(again, first, 300.0)[f"link:qbr{P}:99"] == 300.0


# --- applying on the fakes ----------------------------------------------------------------------


def fake_host() -> tuple[FakeNetlink, FakeOvsdb, Host]:
    netlink, ovsdb = FakeNetlink(), FakeOvsdb()
    netlink.add_device("qbr" + P, "bridge")
    netlink.add_veth_pair("qvb" + P, "qvo" + P)
    netlink.add_device("qbrkeep", "bridge")
    ovsdb.add_port("br-int", "qvo" + P, external_ids=dict(QVO_PORT.external_ids),
                   mtu_request=[1500])
    ovsdb.rows["Port"]["qvo" + P]["tag"] = [100]
    ovsdb.add_port("br-int", "tapretagged", mtu_request=[1500])
    ovsdb.rows["Port"]["tapretagged"]["tag"] = [200]
    return netlink, ovsdb, Host.using(netlink, ovsdb)


def a_plan(networks: Any) -> Any:
    retagged = OvsInterface("tapretagged", "br-int", "u-r", mtu_request=1500, tag=200)
    plan = planned(audit(ORPHANED, (), networks))
    fix = EnsureOvsPort("br-int", "tapretagged", mtu_request=1500, tag=100)
    undo = EnsureOvsPort("br-int", "tapretagged", mtu_request=1500, tag=retagged.tag)
    return replace(plan, steps=(fix, *plan.steps), undo=(*plan.undo, undo))


def test_apply_removes_and_repairs(networks: Any) -> None:
    netlink, ovsdb, fake = fake_host()
    plan = a_plan(networks)
    outcome = apply_gc(plan.steps, plan.undo, fake)
    assert len(outcome.changed) == len(plan.steps)
    assert set(netlink.devices) == {"lo", "qbrkeep"}
    assert "qvo" + P not in ovsdb.rows["Port"]
    assert ovsdb.rows["Port"]["tapretagged"]["tag"] == [100]
    assert ovsdb.transactions == 1


def test_a_failed_deletion_puts_everything_back(networks: Any) -> None:
    netlink, ovsdb, fake = fake_host()
    before_links, before_rows = netlink.state(), ovsdb.state()
    plan = a_plan(networks)
    netlink.fail("delete_group")
    with pytest.raises(StepFailed) as failed:
        apply_gc(plan.steps, plan.undo, fake)
    assert failed.value.rolled_back
    assert "(the host is as before)" in str(failed.value)
    assert netlink.state() == before_links
    after = ovsdb.state()
    assert after["Port"]["tapretagged"]["tag"] == [200]
    assert after["Port"]["qvo" + P]["tag"] == [100]
    assert after["Interface"]["qvo" + P]["external_ids"] == dict(QVO_PORT.external_ids)
    assert sorted(after["Bridge"]["br-int"]["ports"]) == sorted(
        before_rows["Bridge"]["br-int"]["ports"])


def test_a_failed_transaction_changes_nothing(networks: Any) -> None:
    netlink, ovsdb, fake = fake_host()
    before_links, before_rows = netlink.state(), ovsdb.state()
    plan = a_plan(networks)
    ovsdb.fail("db_set")
    with pytest.raises(StepFailed):
        apply_gc(plan.steps, plan.undo, fake)
    assert (netlink.state(), ovsdb.state()) == (before_links, before_rows)


# --- the CLI over stand-in edges ----------------------------------------------------------------


@pytest.fixture
def edges(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    from vifplug.host import inventory as edge

    seen: dict[str, Any] = {"inventory": ORPHANED, "domains": ()}
    monkeypatch.setattr(edge, "read_inventory",
                        lambda host, lock_dir, pools=None: seen["inventory"])
    monkeypatch.setattr(edge, "read_domains", lambda uri: tuple(seen["domains"]))
    monkeypatch.setenv("VIFPLUG_NETWORKS", "/nonexistent/networks.toml")
    return seen


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_cli_dry_run_prints_the_plan_and_records_nothing(edges: dict[str, Any],
                                                         tmp_path: Path) -> None:
    state = tmp_path / "seen.json"
    code, out, err = run("gc", "--dry-run", "--older-than", "0", "--state", str(state))
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == "gc plan:"
    assert f"delete OVS port qvo{P} if it exists" in out
    assert out.endswith("dry run: nothing changed\n")
    assert not state.exists()


def test_cli_first_run_records_and_skips_the_young(edges: dict[str, Any],
                                                   tmp_path: Path) -> None:
    state = tmp_path / "seen.json"
    code, out, _ = run("gc", "--state", str(state))
    assert code == 0
    assert "nothing to do" in out
    assert out.count("younger than --older-than 60 s") == 3
    record = json.loads(state.read_text())
    assert record["format"] == 1
    assert f"link:qbr{P}:10" in record["scopes"]["host"]


def test_cli_bad_older_than_and_bad_state(edges: dict[str, Any], tmp_path: Path) -> None:
    code, _, err = run("gc", "--older-than", "-1", "--state", str(tmp_path / "s.json"))
    assert code == 2
    assert "--older-than" in err
    (tmp_path / "bad.json").write_text("[1]")
    code, _, err = run("gc", "--dry-run", "--state", str(tmp_path / "bad.json"))
    assert code == 2
    assert "bad.json" in err


def test_lock_files_held_and_removed(networks: Any) -> None:
    lock = LockFile("/l", "host", VIF_ID, NOW - 3600)
    plan = planned(audit(replace(ORPHANED, locks=(lock,)), (), networks))
    assert (plan.lock_ids, plan.removed_ids) == ((VIF_ID,), (VIF_ID,))
    retagged = replace(RETAGGED, locks=(lock,))
    plan = planned(audit(retagged, (dom(HYBRID),), networks))
    assert (plan.lock_ids, plan.removed_ids) == ((VIF_ID,), ())


def test_vif_locks_touch_and_remove_only_the_named(tmp_path: Path) -> None:
    import os

    from vifplug.host.apply import vif_locks

    (tmp_path / "host-a.lock").touch()
    os.utime(tmp_path / "host-a.lock", (1, 1))
    with vif_locks(["a", "b"], "host", tmp_path, remove={"b"}):
        assert (tmp_path / "host-a.lock").stat().st_mtime > 1  # touched: a plug is recent
    assert sorted(p.name for p in tmp_path.iterdir()) == ["host-a.lock"]


def test_narrow_drops_what_a_new_domain_claims(networks: Any) -> None:
    from vifplug.gc import narrow

    lock = LockFile("/l", "host", VIF_ID, NOW - 3600)
    inventory = replace(ORPHANED, locks=(lock,))
    plan = planned(audit(inventory, (), networks))
    assert narrow(plan, audit(inventory, (), networks)) is plan
    after = narrow(plan, audit(inventory, (dom(HYBRID, running=False),), networks))
    assert (after.steps, after.undo, after.lock_ids, after.removed_ids) == ((), (), (), ())
    assert {skip.subject for skip in after.skipped} == {"qbr" + P, "qvb" + P, "qvo" + P}
    assert all("a domain has it now" in skip.reason for skip in after.skipped)
