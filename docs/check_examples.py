#!/usr/bin/env python3
"""Check that the command outputs shown in docs/src are what the commands print today.

    python docs/check_examples.py           # exit 1 and show a diff for every stale block
    python docs/check_examples.py --update  # rewrite stale blocks with what the commands print

It re-runs, from the repository root:

* every ```console block: each ``$ command`` line runs in one bash shell per block, stdout and
  stderr merged, so ``$ echo $?`` shows the exit code of the command before it; the ``vifplug`` on
  PATH is the one next to this Python; help texts are formatted for 100 columns;
* every ```python block followed by a ```text title="Output" block.

docs/src/vif-format.md is generated and checked by ``python docs/gen_reference.py --check``.
"""

from __future__ import annotations

import difflib
import os
import re
import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
SKIP = {"vif-format.md"}
MARK = "@@vifplug-docs-end@@"

FENCE = re.compile(r"^```(?P<lang>\w*)(?P<attrs>[^\n]*)\n(?P<body>.*?)^```[ \t]*$",
                   re.MULTILINE | re.DOTALL)


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "100"
    env["LC_ALL"] = "C.UTF-8"
    return env


def console(body: str) -> tuple[str, str]:
    """(expected, actual) for one console block."""
    commands: list[str] = []
    expected: list[str] = []
    for line in body.splitlines(keepends=True):
        if line.startswith("$ "):
            commands.append(line[2:].rstrip("\n"))
            expected.append(line)
        elif commands:
            expected.append(line)
        else:
            raise ValueError(f"output before the first command: {line!r}")
    script = "".join(f"{command} 2>&1\n__rc=$?\nprintf '%s\\n' {MARK}\n(exit $__rc)\n"
                     for command in commands)
    result = subprocess.run(["bash", "-c", script], cwd=ROOT, env=environment(),
                            capture_output=True, text=True, check=False)
    outputs = result.stdout.split(MARK + "\n")
    actual = [f"$ {command}\n{output}" for command, output in zip(commands, outputs, strict=False)]
    return "".join(expected), "".join(actual) + result.stderr


def python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment(),
                            capture_output=True, text=True, check=False)
    return result.stdout + result.stderr


def check(page: Path, update: bool = False) -> int:
    text = page.read_text()
    blocks = list(FENCE.finditer(text))
    failures = 0
    replacements: list[tuple[int, int, str]] = []
    for index, block in enumerate(blocks):
        lang, body = block["lang"], block["body"]
        if lang == "console":
            expected, actual = console(body)
            span = block.span("body")
        elif lang == "python" and index + 1 < len(blocks):
            following = blocks[index + 1]
            between = text[block.end():following.start()]
            if following["lang"] != "text" or 'title="Output"' not in following["attrs"] \
                    or between.strip():
                continue
            expected, actual = following["body"], python(body)
            span = following.span("body")
        else:
            continue
        if expected != actual:
            failures += 1
            replacements.append((*span, actual))
            line = text.count("\n", 0, block.start()) + 1
            print(f"{page.relative_to(ROOT)}:{line}: output differs", file=sys.stderr)
            sys.stderr.writelines(difflib.unified_diff(
                expected.splitlines(keepends=True), actual.splitlines(keepends=True),
                "shown", "actual"))
    if update and replacements:
        for start, end, actual in reversed(replacements):
            text = text[:start] + actual + text[end:]
        page.write_text(text)
    return failures


def main() -> int:
    update = "--update" in sys.argv[1:]
    failures = sum(check(page, update) for page in sorted((DOCS / "src").rglob("*.md"))
                   if page.name not in SKIP)
    if failures and update:
        print(f"{failures} stale block(s) rewritten", file=sys.stderr)
        return 0
    if failures:
        print(f"{failures} stale block(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
