"""Import and start-up cost: ``import vifplug`` side by side with ``import lxml.etree``.

Each command runs as a fresh ``python`` subprocess (the interpreter running this script), all
commands alternating round by round (two warm-up rounds discarded), and its wall time is taken
with ``time.perf_counter_ns`` around ``subprocess.run``. Compared:

* ``python -c pass``: the interpreter's own start-up, the floor under every other row;
* ``python -c "import lxml.etree"``: the baseline (vifplug's only import-time dependency on the
  hook's path);
* ``python -c "import vifplug"``: goal at most 1.5x ``import lxml.etree`` (wall time);
* ``python -c "import lxml.etree; from pydantic import BaseModel"``: the floor for anything that
  validates with pydantic, for reading the next two rows honestly;
* ``python -c "from vifplug import Vif, GenericVIFDriver"``: pulls pydantic, lxml and every
  connection;
* ``python -m vifplug render examples/ovs-virtualport.json``: the whole CLI (parse, validate,
  select, render, print).

"net" subtracts the median of ``python -c pass`` (the interpreter start-up every row pays).

It also checks, each in a fresh subprocess, that neither ``import vifplug`` nor a full render
(every example under three drivers, ``devices_xml``, ``metadata_xml`` and the CLI's ``render``)
imports the host-plugging or libvirt modules: ``pyroute2``, ``ovsdbapp``, ``libvirt``, ``os_vif``.

Run by hand (never from the tests); takes about half a minute::

    /work/venv/bin/python bench/imports.py              # 30 rounds
    /work/venv/bin/python bench/imports.py --rounds 50
    /work/venv/bin/python bench/imports.py --importtime # also: python -X importtime, top entries
    /work/venv/bin/python bench/imports.py --phases     # also: each step of a first render
    /work/venv/bin/python bench/imports.py --no-bytecode-cache  # keep PYTHONDONTWRITEBYTECODE
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
GOAL_RATIO = 1.5

#: Modules that render (and ``import vifplug``) must never import.
FORBIDDEN = ("pyroute2", "ovsdbapp", "libvirt", "os_vif")

COMMANDS: dict[str, list[str]] = {
    "python -c pass": ["-c", "pass"],
    "import lxml.etree": ["-c", "import lxml.etree"],
    "import vifplug": ["-c", "import vifplug"],
    "lxml.etree + pydantic": ["-c", "import lxml.etree; from pydantic import BaseModel, Field"],
    "from vifplug import Vif, Generic..": ["-c", "from vifplug import Vif, GenericVIFDriver"],
    "python -m vifplug render": ["-m", "vifplug", "render", "examples/ovs-virtualport.json"],
}
BASELINE = "import lxml.etree"
FLOOR = "python -c pass"

#: Run in a fresh interpreter: which forbidden (and which heavy) modules each step imported.
_CHECK = """
import io, json, sys
from pathlib import Path

FORBIDDEN = {forbidden!r}

def loaded(names):
    return sorted(n for n in names if n in sys.modules
                  or any(m.startswith(n + ".") for m in sys.modules))

report = {{}}
import vifplug
report["import vifplug"] = (loaded(FORBIDDEN), loaded(("lxml", "pydantic")))

from vifplug import GenericVIFDriver, load_vifs
from vifplug.cli import main
drivers = [GenericVIFDriver(), GenericVIFDriver(firewall=True),
           GenericVIFDriver(libvirt_version="0.9.10")]
count = 0
for path in sorted(Path("examples").glob("*.json")):
    vifs = load_vifs(path)
    for driver in drivers:
        for vif in vifs:
            driver.render(vif)
            driver.render(vif, pretty=False)
            count += 1
        driver.devices_xml(vifs)
        driver.metadata_xml(vifs)
    for extra in ([], ["--firewall"], ["--libvirt-version", "0.9.10"], ["--metadata"]):
        assert main(["render", str(path), *extra], io.StringIO(), io.StringIO()) == 0
assert count > 0
report["full render (%d interfaces + CLI)" % count] = (loaded(FORBIDDEN),
                                                      loaded(("lxml", "pydantic")))
print(json.dumps(report))
"""


#: The subprocesses' environment; see :func:`bytecode_env`.
ENV: dict[str, str] = dict(os.environ)


def bytecode_env(cache: bool) -> tuple[dict[str, str], str | None]:
    """The environment for the subprocesses, and the bytecode cache directory to remove after.

    With ``cache`` (the default), bytecode is cached as on an installed system, but in a
    temporary directory (``PYTHONPYCACHEPREFIX``), so nothing is written into the source tree;
    the warm-up rounds fill it. Without, the caller's environment is kept as it is (with
    ``PYTHONDONTWRITEBYTECODE=1`` every run compiles vifplug's sources, which lxml and pydantic,
    installed with their ``.pyc``, never do)."""
    env = dict(os.environ)
    if not cache:
        return env, None
    prefix = tempfile.mkdtemp(prefix="vifplug-bench-pycache-")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = prefix
    return env, prefix


def run_once(args: Sequence[str]) -> int:
    """Wall time of one fresh subprocess, in nanoseconds."""
    start = time.perf_counter_ns()
    subprocess.run([PYTHON, *args], cwd=ROOT, check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, env=ENV)
    return time.perf_counter_ns() - start


def measure(rounds: int, warmup: int = 2) -> dict[str, list[int]]:
    """Every command once per round, in turn, so drift hits all of them alike."""
    times: dict[str, list[int]] = {name: [] for name in COMMANDS}
    for number in range(warmup + rounds):
        for name, args in COMMANDS.items():
            elapsed = run_once(args)
            if number >= warmup:
                times[name].append(elapsed)
    return times


def print_table(times: dict[str, list[int]]) -> dict[str, float]:
    medians = {name: statistics.median(values) / 1e6 for name, values in times.items()}
    floor, base = medians[FLOOR], medians[BASELINE]
    print(f"{'command':36} {'median ms':>9} {'min ms':>7} {'p90 ms':>7} {'net ms':>7} "
          f"{'/lxml':>6} {'net/lxml':>8}")
    for name, values in times.items():
        ms = sorted(v / 1e6 for v in values)
        p90 = ms[min(len(ms) - 1, round(0.9 * (len(ms) - 1)))]
        median = medians[name]
        net = median - floor
        net_ratio = f"{net / (base - floor):>7.2f}x" if name != FLOOR else f"{'':>8}"
        print(f"{name:36} {median:>9.1f} {ms[0]:>7.1f} {p90:>7.1f} {net:>7.1f} "
              f"{median / base:>5.2f}x {net_ratio}")
    return medians


def check_modules() -> bool:
    """Run the module check in a fresh interpreter; print and return whether it passed."""
    code = _CHECK.format(forbidden=FORBIDDEN)
    result = subprocess.run([PYTHON, "-c", code], cwd=ROOT, check=True, capture_output=True,
                            text=True, env=ENV)
    report: dict[str, list[list[str]]] = json.loads(result.stdout)
    ok = True
    print(f"\nmodules after each step (fresh subprocess; forbidden: {', '.join(FORBIDDEN)}):")
    for step, (forbidden, heavy) in report.items():
        ok = ok and not forbidden
        print(f"  {step:42} forbidden: {', '.join(forbidden) or 'none':8} "
              f"also loaded: {', '.join(heavy) or 'neither lxml nor pydantic'}")
    return ok


def importtime(statement: str, top: int = 15) -> None:
    """``python -X importtime -c statement``: the modules with the largest cumulative time."""
    result = subprocess.run([PYTHON, "-X", "importtime", "-c", statement], cwd=ROOT, check=True,
                            capture_output=True, text=True, env=ENV)
    rows = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, cumulative_us, name = line.removeprefix("import time:").split("|", 2)
        rows.append((int(cumulative_us), int(self_us), name.strip()))
    rows.sort(reverse=True)
    shown = rows[:top] + [row for row in rows[top:] if row[2].startswith("vifplug")]
    print(f"\npython -X importtime -c {statement!r}: top {top} by cumulative time, and vifplug's")
    print("(modules loaded through importlib.import_module, as vifplug's lazy names load "
          "vifplug.model and vifplug.driver, are not listed: see --phases)")
    print(f"{'cumulative ms':>13} {'self ms':>8}  module")
    for cumulative, self_time, name in shown:
        print(f"{cumulative / 1e3:>13.1f} {self_time / 1e3:>8.1f}  {name}")


#: Run in a fresh interpreter: the cost of each step of a first render, in order.
_PHASES = """
import time
t = [time.perf_counter_ns()]
import lxml.etree
t.append(time.perf_counter_ns())
from pydantic import BaseModel, Field
t.append(time.perf_counter_ns())
import vifplug.model
t.append(time.perf_counter_ns())
import vifplug.driver
t.append(time.perf_counter_ns())
from pathlib import Path
from vifplug import GenericVIFDriver, load_vifs
vifs = load_vifs(Path("examples/ovs-virtualport.json"))
t.append(time.perf_counter_ns())
driver = GenericVIFDriver()
driver.render(vifs[0])
t.append(time.perf_counter_ns())
load_vifs(Path("examples/ovs-virtualport.json"))
t.append(time.perf_counter_ns())
print(" ".join(str(b - a) for a, b in zip(t, t[1:])))
"""
PHASES = (
    "import lxml.etree",
    "from pydantic import BaseModel, Field",
    "import vifplug.model (rest of pydantic, 12 model classes)",
    "import vifplug.driver (connections, xml)",
    "first load_vifs(path) (builds the deferred schemas)",
    "first GenericVIFDriver().render(vif)",
    "second load_vifs(path), for comparison",
)


def phases(runs: int = 15) -> None:
    """Median in-process cost of each step of a first render, over fresh subprocesses."""
    samples: list[list[int]] = []
    for _ in range(runs):
        result = subprocess.run([PYTHON, "-c", _PHASES], cwd=ROOT, check=True,
                                capture_output=True, text=True, env=ENV)
        samples.append([int(value) for value in result.stdout.split()])
    print(f"\nsteps of a first render, in process (median of {runs} fresh subprocesses):")
    for index, name in enumerate(PHASES):
        print(f"  {statistics.median(s[index] for s in samples) / 1e6:>7.1f} ms  {name}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=30, help="runs of each command (30)")
    parser.add_argument("--importtime", action="store_true",
                        help="also print python -X importtime for the vifplug imports")
    parser.add_argument("--phases", action="store_true",
                        help="also print the in-process cost of each step of a first render")
    parser.add_argument("--no-bytecode-cache", action="store_true",
                        help="keep the environment as it is (PYTHONDONTWRITEBYTECODE=1 makes "
                        "every run compile vifplug's sources)")
    args = parser.parse_args(argv)

    ENV.clear()
    env, prefix = bytecode_env(cache=not args.no_bytecode_cache)
    ENV.update(env)
    try:
        return _main(args)
    finally:
        if prefix is not None:
            shutil.rmtree(prefix, ignore_errors=True)


def _main(args: argparse.Namespace) -> int:
    modules_ok = check_modules()
    if "PYTHONPYCACHEPREFIX" in ENV:
        cache = "bytecode cached in a temporary PYTHONPYCACHEPREFIX"
    else:
        cache = f"environment as is, PYTHONDONTWRITEBYTECODE={ENV.get('PYTHONDONTWRITEBYTECODE')}"
    print(f"\n{args.rounds} alternating rounds of fresh subprocesses ({PYTHON}; {cache}); "
          f"/lxml = median / median of {BASELINE!r}; net = minus {FLOOR!r}\n")
    medians = print_table(measure(args.rounds))
    ratio = medians["import vifplug"] / medians[BASELINE]
    print(f"\ngoal 'import vifplug' <= {GOAL_RATIO}x 'import lxml.etree' (wall): "
          f"{'met' if ratio <= GOAL_RATIO else 'MISSED'} ({ratio:.2f}x)")
    print(f"no forbidden module imported: {'met' if modules_ok else 'MISSED'}")
    if args.phases:
        phases()
    if args.importtime:
        importtime("import vifplug")
        importtime("from vifplug import Vif, GenericVIFDriver")
    assert modules_ok, "a forbidden module was imported (see above)"
    return 0


if __name__ == "__main__":
    sys.exit(main())
