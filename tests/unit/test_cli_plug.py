"""`vifplug plug|unplug` without touching a host: dry runs and bad options (exit 2)."""

from __future__ import annotations

import io

import pytest
from helpers import EXAMPLES

from vifplug.cli import main

VM = "11111111-2222-3333-4444-555555555555"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_dry_run_prints_the_plan_and_connects_to_nothing() -> None:
    # An OVSDB that does not exist: a dry run must not even try it.
    code, out, err = run("plug", "--dry-run", "--ovsdb", "unix:/nonexistent/db.sock",
                         "--instance-uuid", VM.upper(), str(EXAMPLES / "guest-three-nics.json"))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].endswith("(ovs-virtualport):")
    assert "  1. check OVS bridge br-int exists" in lines
    assert any(line.startswith("VIF 8d9e0f1a-2b3c-4d5e-9f6a-7b8c9d0e1f2a (bridge)")
               for line in lines)
    assert "  1. check macvtap lower device eth2 exists" in lines


def test_unplug_dry_run() -> None:
    code, out, _ = run("unplug", "--dry-run", str(EXAMPLES / "ovs-hybrid.json"))
    assert code == 0
    assert out.splitlines()[1:] == [
        "  1. delete OVS port qvo0f6d3c1e-5b if it exists",
        "  2. delete qvb0f6d3c1e-5b if it exists",
        "  3. delete qbr0f6d3c1e-5b if it exists",
    ]


def test_instance_uuid_goes_into_the_port() -> None:
    _, out, _ = run("plug", "--dry-run", "--instance-uuid", VM.upper(),
                    str(EXAMPLES / "ovs-manual.json"))
    assert f"vm-uuid={VM}," in out


@pytest.mark.parametrize(("argv", "message"), [
    (["--instance-uuid", "nope"], "--instance-uuid: expected a UUID"),
    (["--netns", "vifplug-no-such-netns"], "--netns: no network namespace"),
    (["--netns", "../etc"], "--netns: expected a network namespace name"),
    (["--ovsdb", "http://example"], "--ovsdb: expected unix:/path"),
])
def test_bad_options_exit_2_and_touch_nothing(argv: list[str], message: str) -> None:
    code, out, err = run("plug", *argv, str(EXAMPLES / "ovs-hybrid.json"))
    assert (code, out) == (2, "")
    assert message in err


def test_bad_backend_is_a_usage_error() -> None:
    code, out, err = run("plug", "--ovsdb-backend", "magic", str(EXAMPLES / "ovs-hybrid.json"))
    assert (code, out) == (2, "")
    assert "invalid choice" in err


def test_unplug_has_no_instance_uuid() -> None:
    code, _, err = run("unplug", "--instance-uuid", VM, str(EXAMPLES / "ovs-hybrid.json"))
    assert code == 2
    assert "unrecognized arguments" in err


def test_plug_help_lists_every_option() -> None:
    code, out, _ = run("plug", "--help")
    assert code == 0
    for option in ("--dry-run", "--instance-uuid", "--netns", "--ovsdb ", "--ovsdb-backend",
                   "--create-ovs-bridge", "--firewall", "--libvirt-version"):
        assert option in out, option
