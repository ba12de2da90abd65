"""The shape issue 8 asks of plans and host/: a step kind is one class that owns its host
operations; host/ dispatches on no step type; plan.py and the fakes stay light to import."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

import vifplug.plan
from vifplug.plan import Check, LinkStep, OvsdbStep, Step

HOST = Path(vifplug.plan.__file__).parent / "host"
STEP_KINDS = sorted((cls for cls in vars(vifplug.plan).values()
                     if isinstance(cls, type) and issubclass(cls, Step)
                     and dataclasses.is_dataclass(cls)), key=lambda cls: cls.__name__)
#: The hooks each phase's steps implement (a link step: one of the two).
HOOKS = {
    Check: ({"check"},),
    LinkStep: ({"apply_link"}, {"deletes"}),
    OvsdbStep: ({"snapshot_names", "holds", "ovsdb_native", "vsctl_commands"},),
}


@pytest.mark.parametrize("path", sorted(HOST.glob("*.py")), ids=lambda path: path.name)
def test_host_dispatches_on_no_step_type(path: Path) -> None:
    step_names = {cls.__name__ for cls in STEP_KINDS} | {"Step", "Check", "LinkStep",
                                                          "OvsdbStep"}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance":
            kinds = node.args[1]
            named = {getattr(kind, "id", None) for kind in (
                kinds.elts if isinstance(kinds, ast.Tuple) else [kinds])}
            assert not named & step_names, f"{path.name}:{node.lineno} dispatches on a step type"
        if isinstance(node, ast.ImportFrom) and node.module == "vifplug.plan":
            imported = {alias.name for alias in node.names}
            assert imported <= {"Plan", "Step"}, f"{path.name} imports step kinds: {imported}"


@pytest.mark.parametrize("kind", STEP_KINDS, ids=lambda kind: kind.__name__)
def test_each_step_kind_is_one_class_owning_its_phase(kind: type[Step]) -> None:
    (phase_base,) = [base for base in HOOKS if issubclass(kind, base)]
    own = set(vars(kind))
    assert {"device", "describe"} <= own
    assert any(hooks <= own for hooks in HOOKS[phase_base]), (kind, own)
    assert kind.phase == phase_base.phase


def test_importing_plan_imports_no_host_code() -> None:
    code = ("import sys, vifplug.plan\n"
            "heavy = {'pyroute2', 'ovsdbapp', 'vifplug.host'} & set(sys.modules)\n"
            "assert not heavy, heavy\n"
            "import vifplug.host.fake, vifplug.host.faults\n"
            "heavy = {'pyroute2', 'ovsdbapp'} & set(sys.modules)\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True)
