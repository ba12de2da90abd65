"""Fixtures shared by the CLI and bad-input tests: paths, and ways to run ``vifplug``."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
BAD = REPO / "tests" / "data" / "bad"


@dataclass(frozen=True)
class Result:
    """What one run of the CLI produced."""

    code: int
    stdout: str
    stderr: str


Runner = Callable[..., Result]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONIOENCODING"] = "utf-8"  # explain draws the path with box-drawing characters
    env.pop("PYTHONWARNINGS", None)
    return env


def run_subprocess(argv: Sequence[str], *, input: str | bytes | None = None,
                   timeout: float = 60) -> Result:
    """Run ``argv`` (a full command line) and capture its exit code, stdout and stderr."""
    data = input.encode() if isinstance(input, str) else input
    proc = subprocess.run(list(argv), input=data, capture_output=True, timeout=timeout,
                          env=_child_env(), check=False, cwd=REPO)
    return Result(proc.returncode, proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8"))


@pytest.fixture
def run_module() -> Runner:
    """``python -m vifplug ARGS`` in a child process."""

    def run(*args: str, input: str | bytes | None = None) -> Result:
        return run_subprocess([sys.executable, "-m", "vifplug", *args], input=input)

    return run


@pytest.fixture
def console_script() -> Path:
    """The installed ``vifplug`` console script, next to the interpreter running the tests."""
    script = Path(sys.executable).parent / "vifplug"
    assert script.is_file(), f"no vifplug console script next to {sys.executable}"
    return script


@pytest.fixture
def run_script(console_script: Path) -> Runner:
    """``vifplug ARGS`` (the console script) in a child process."""

    def run(*args: str, input: str | bytes | None = None) -> Result:
        return run_subprocess([str(console_script), *args], input=input)

    return run


@pytest.fixture
def run_main() -> Runner:
    """``vifplug.cli.main(ARGS)`` in this process, with its own stdout and stderr buffers."""
    from vifplug.cli import main

    def run(*args: str) -> Result:
        out, err = io.StringIO(), io.StringIO()
        code = main(list(args), stdout=out, stderr=err)
        return Result(code, out.getvalue(), err.getvalue())

    return run


@pytest.fixture(scope="session")
def cli_schema() -> dict[str, Any]:
    """The JSON Schema that ``vifplug schema`` prints."""
    from vifplug.cli import main

    out, err = io.StringIO(), io.StringIO()
    assert main(["schema"], stdout=out, stderr=err) == 0, err.getvalue()
    assert err.getvalue() == ""
    schema: dict[str, Any] = json.loads(out.getvalue())
    return schema


@pytest.fixture(scope="session")
def schema_validator(cli_schema: dict[str, Any]) -> Any:
    """A jsonschema validator for ``vifplug schema``'s output (checked to be a valid schema)."""
    from jsonschema import Draft202012Validator

    assert cli_schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(cli_schema)  # raises SchemaError if it is not a schema
    return Draft202012Validator(cli_schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
