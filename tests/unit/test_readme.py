"""The README's promises: its library example runs, and CI runs exactly its test command."""

from __future__ import annotations

import re
import subprocess
import sys

from helpers import ROOT

README = (ROOT / "README.md").read_text()


def test_library_example_runs() -> None:
    code = re.search(r"```python\n(.*?)```", README, re.S)
    assert code is not None
    result = subprocess.run([sys.executable, "-c", code.group(1)], capture_output=True,
                            text=True, check=True, cwd=ROOT)
    assert result.stdout.splitlines()[0] == "ovs-hybrid"
    assert '<source bridge="qbr0f6d3c1e-5b"/>' in result.stdout
    assert 'network="blue"' in result.stdout


def test_render_command_output_is_current() -> None:
    command = re.search(r"```sh\npip install \. && (vifplug render \S+)\n```", README)
    shown = re.search(r"```xml\n(.*?)```", README, re.S)
    assert command is not None
    assert shown is not None
    argv = [sys.executable, "-m", "vifplug", *command.group(1).split()[1:]]
    result = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=ROOT)
    assert result.stdout == shown.group(1)


def test_ci_runs_the_readme_test_command() -> None:
    command = re.search(r"## Run every test.*?```sh\n(.*?)\n```", README, re.S)
    assert command is not None
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert command.group(1) in ci
