"""Plugging throughput: vifplug side by side with os-vif 5.3 and with the bare floor, in one run.

Every measurement gets a fresh network namespace with a fresh private OVS (ovsdb-server +
ovs-vswitchd, userspace datapath, ``br-int``), so each starts from the same empty bridge; the
netlink socket and the OVSDB connection of each side are opened (and os-vif's privsep daemon
started) before the clock starts. Times are wall-clock ms per VIF.

Scenarios (``--only`` picks one; N in brackets is ``--quick``'s):

* ``single``: hybrid VIFs one per call: vifplug ``plug()`` 100 [20] times, then ``unplug()`` 100
  times, vs ``os_vif.plug``/``os_vif.unplug`` on the same VIFs (os-vif's ``VIFBridge``, the
  ``ovs`` plugin, privsep, native OVSDB). vifplug's ``plug()`` waits until the VIF is ready (its
  default, ``wait=True``), as os-vif's waits for ovs-vswitchd. Goals: plug+unplug per VIF >= 2.5x
  faster than os-vif (the first plugging goal) and >= 2x (issue 9).
* ``burst``: 500 [50] hybrid VIFs plugged one call each onto an empty bridge (an agent
  re-plugging a rebooted host's guests), until the last is ready: vifplug ``plug(wait=False)``
  per VIF then one ``wait()`` for all of them, vs ``os_vif.plug`` per VIF (which waits for
  ovs-vswitchd each time). Goal (issue 9): vifplug <= 0.2x os-vif's time.
* ``growth``: the per-call plug latency in ``burst`` (the same measurement): the mean of the
  first and of the last tenth of the 500 [50] plugs. vifplug's is the time to commit
  (``wait=False``); os-vif's plug always waits for ovs-vswitchd, which revisits every port on the
  bridge at each transaction, so its late plugs cost more. Goal (issue 9): vifplug's last tenth
  <= 1.5x its first tenth.
* ``batch``: hybrid ``plug_many``/``unplug_many`` of 100 and 500 [20, 50] vs os-vif one at a time
  (it has no batch call; the same measurement as ``single``) and vs the floor
  (bench/plug_floor.py: pyroute2 + ovsdbapp by hand, one OVSDB transaction per batch).
  Goals: >= 4x faster per VIF than os-vif, and within 1.2x of the floor; issue 9: the plug
  (commit, then wait until ready; shown split) within 1.3x of the floor, plug+unplug within
  1.15x. ``--no-os-vif`` compares with the floor only.
* ``manual``: OVS VIFs without the hybrid bridge (a TAP vifplug creates, and its port), 500 [50]
  batched, vifplug vs the floor (the same issue 9 goals).

* ``parallel``: a bridge already holding 450 [45] hybrid ports (plugged untimed, by vifplug's
  ``plug_many``, on both sides alike, and ovs-vswitchd let catch up); then 50 [10] threads each
  plug one hybrid VIF and wait until it is ready — vifplug: ``plug(vif, host)``
  (``wait=True``) through one shared ``Host``; os-vif: ``os_vif.plug`` in 50 threads of its
  worker. Time from the threads' release until all 50 returned, and how many OVSDB
  transactions vifplug's 50 plugs sent. Goal (issue 9): vifplug <= 0.25x os-vif's time.

Other load on the machine must hit every side alike: one VIF per call, vifplug and os-vif run on
two private OVS side by side, VIF by VIF alternately; in ``batch`` and ``manual``, vifplug and
the floor run ``--rounds`` times (3) alternately, the median round kept; in ``burst``, vifplug's
and os-vif's bursts (each on a fresh OVS of its own) alternate likewise. No figure counts unless
every port of both sides then has an OpenFlow port (``ovs-vsctl get Interface qvo… ofport``
>= 1). Before measuring a batch it checks, on 5 VIFs, that vifplug and the floor leave exactly
the same devices and OVSDB rows (the floor does the same work, not less).

Run as root (takes ~10 min; ``--quick`` ~1 min)::

    /work/venv/bin/python bench/plug.py
    /work/venv/bin/python bench/plug.py --quick
    /work/venv/bin/python bench/plug.py --only burst --only growth --only single --rounds 3
    /work/venv/bin/python bench/plug.py --only growth --repeats 2 --json /tmp/growth.json
    /work/venv/bin/python bench/plug.py --only batch --profile   # cProfile of vifplug's calls
    /work/venv/bin/python bench/plug.py --ovsdb-backend vsctl    # vifplug through ovs-vsctl
"""

from __future__ import annotations

import argparse
import cProfile
import errno
import json
import os
import platform
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _ovs import (
    BRIDGE,
    INSTANCE_UUID,
    OsVifWorker,
    host_state,
    names,
    ovs_version,
    private_ovs,
    vif_json,
    vif_specs,
)
from plug_floor import Floor

GOAL_SINGLE = 2.5
GOAL_BATCH_VS_OS_VIF = 4.0
GOAL_BATCH_VS_FLOOR = 1.2
#: Issue 9: a batched plug within 1.3x of the floor, plug+unplug within 1.15x.
GOAL_BATCH_PLUG_VS_FLOOR = 1.3
GOAL_BATCH_BOTH_VS_FLOOR = 1.15
GOAL_SINGLE_ISSUE9 = 2.0
GOAL_BURST = 0.2
GOAL_GROWTH = 1.5
GOAL_PARALLEL = 0.25

_M = TypeVar("_M")

#: Seconds vifplug's ``wait()`` in ``burst`` gives the last VIF (far above what it takes).
BURST_TIMEOUT = 600.0

SCENARIOS = ("single", "burst", "growth", "parallel", "batch", "manual")
SIZES = {
    False: {"single": 100, "batch": (100, 500), "burst": 500, "manual": 500,
            "parallel": (450, 50)},
    True: {"single": 20, "batch": (20, 50), "burst": 50, "manual": 50, "parallel": (45, 10)},
}

# --- measurements --------------------------------------------------------------------------------


@dataclass
class Run:
    """Seconds per VIF of one plug and one unplug pass (one entry per VIF, or one per batch)."""

    plug: list[float]
    unplug: list[float]
    batch: int = 1  # VIFs per entry
    #: vifplug's batches: the plug's time until committed (``wait=False``), before its wait.
    committed: list[float] = field(default_factory=list)

    @property
    def committed_ms(self) -> float | None:
        if not self.committed:
            return None
        return 1000 * sum(self.committed) / (len(self.committed) * self.batch)

    @property
    def plug_ms(self) -> float:
        return 1000 * sum(self.plug) / (len(self.plug) * self.batch)

    @property
    def unplug_ms(self) -> float:
        return 1000 * sum(self.unplug) / (len(self.unplug) * self.batch)

    def tenth_ms(self, last: bool) -> float:
        return _tenth_ms(self.plug, last)


def _tenth_ms(times: list[float], last: bool) -> float:
    """Mean ms of the first (or last) tenth of ``times``."""
    tenth = max(1, len(times) // 10)
    part = times[-tenth:] if last else times[:tenth]
    return 1000 * statistics.fmean(part)


@dataclass
class Burst:
    """One burst of N one-per-call plugs: each call's seconds, and the seconds from the first
    call until all returned (committed) and until the last VIF was ready."""

    calls: list[float]
    committed: float
    ready: float

    @property
    def n(self) -> int:
        return len(self.calls)


@dataclass
class Parallel:
    """Many plugs at once: seconds from their release until all returned (each waited until
    its VIF was ready), and the OVSDB transactions they sent (vifplug; ``None``: not known)."""

    seconds: float
    transactions: int | None = None


@dataclass
class Bench:
    backend: str
    profile: cProfile.Profile | None
    rounds: int = 3
    lock_dir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="vp-bench-locks-"))
    os_vif_version: str = "?"
    singles: dict[int, tuple[Run, Run]] = field(default_factory=dict)
    bursts: dict[int, tuple[list[Burst], list[Burst]]] = field(default_factory=dict)
    parallels: dict[tuple[int, int], tuple[list[Parallel], list[Parallel]]] = field(
        default_factory=dict)
    enobufs: int = 0  # vifplug waits in burst that died of ENOBUFS and were retried
    checked: set[str] = field(default_factory=set)
    no_os_vif: bool = False  # batch: skip os-vif one per call (vifplug vs the floor only)

    def single(self, count: int) -> tuple[Run, Run]:
        """:meth:`single_pair` once per N and repeat: ``single``, ``batch`` and ``growth``
        share it (os-vif one VIF per call is the comparison for all three)."""
        if count not in self.singles:
            self.singles[count] = self.single_pair(count, 0x100)
        return self.singles[count]

    def check_once(self, kind: str) -> None:
        if kind not in self.checked:
            self.same_end_state(kind)
            self.checked.add(kind)

    @contextmanager
    def profiled(self) -> Iterator[None]:
        if self.profile is None:
            yield
            return
        self.profile.enable()
        try:
            yield
        finally:
            self.profile.disable()

    # --- vifplug ---

    @contextmanager
    def vifplug_host(self, netns: Any, ovs: Any) -> Iterator[Any]:
        from vifplug.host import Host

        with Host(netns=netns.name, ovsdb=ovs.db, ovsdb_backend=self.backend,
                  lock_dir=Path(self.lock_dir)) as host:
            host.netlink.get("lo")  # open the socket and the connection before timing
            host.ovsdb.bridge_exists(BRIDGE)
            host.ovsdb_reader.switch_state()  # readiness reads this replica (native: the same)
            yield host

    def single_pair(self, count: int, salt: int) -> tuple[Run, Run]:
        """vifplug and os-vif one VIF per call, ``(vifplug, os-vif)``: two private OVS side by
        side, the same VIFs, VIF by VIF alternately (and alternating who goes first), all plugs
        and then all unplugs: other load on the machine hits both alike."""
        from vifplug import GenericVIFDriver, load_vifs

        specs = vif_specs(count, salt)
        vifs = load_vifs([vif_json(spec) for spec in specs])
        driver = GenericVIFDriver(firewall=True)
        ours: dict[str, list[float]] = {"plug": [], "unplug": []}
        theirs: dict[str, list[float]] = {"plug": [], "unplug": []}
        with private_ovs() as (netns, ovs), private_ovs() as (other_netns, other_ovs), \
                self.vifplug_host(netns, ovs) as host, \
                OsVifWorker(other_netns, other_ovs) as worker:
            self.os_vif_version = worker.version

            def vifplug(op: str, vif: Any) -> None:
                with self.profiled():
                    start = time.perf_counter()
                    if op == "plug":
                        driver.plug(vif, host, instance_uuid=INSTANCE_UUID)
                    else:
                        driver.unplug(vif, host)
                    ours[op].append(time.perf_counter() - start)

            for op in ("plug", "unplug"):
                for index, (spec, vif) in enumerate(zip(specs, vifs, strict=True)):
                    if index % 2 == 0:
                        vifplug(op, vif)
                    theirs[op] += worker.run(op, [spec])
                    if index % 2 == 1:
                        vifplug(op, vif)
                expected = count if op == "plug" else 0
                _check_ports(ovs, expected)
                _check_ports(other_ovs, expected)
                if op == "plug":  # both sides' plugs returned ready: check it
                    _check_ready(ovs, specs, "vifplug")
                    _check_ready(other_ovs, specs, "os-vif")
        return Run(ours["plug"], ours["unplug"]), Run(theirs["plug"], theirs["unplug"])

    def vifplug_batch(self, count: int, salt: int, kind: str) -> Run:
        from vifplug import GenericVIFDriver, load_vifs

        specs = vif_specs(count, salt)
        vifs = load_vifs([vif_json(spec, kind) for spec in specs])
        driver = GenericVIFDriver(firewall=True)
        with private_ovs() as (netns, ovs), self.vifplug_host(netns, ovs) as host, \
                self.profiled():
            # plug_many(wait=True) is exactly these two calls; split to show both parts.
            start = time.perf_counter()
            outcome = driver.plug_many(vifs, host, instance_uuid=INSTANCE_UUID, wait=False)
            committed = time.perf_counter()
            driver.wait(vifs, host, timeout=BURST_TIMEOUT, cfg=outcome.ovs_cfg)
            plugged = time.perf_counter()
            _check_ports(ovs, count)
            _check_ready(ovs, specs, "vifplug", "qvo" if kind == "hybrid" else "tap")
            middle = time.perf_counter()
            driver.unplug_many(vifs, host)
            done = time.perf_counter()
            _check_ports(ovs, 0)
        return Run([plugged - start], [done - middle], batch=count,
                   committed=[committed - start])

    def vifplug_burst(self, count: int, salt: int) -> Burst:
        """``plug(wait=False)`` one VIF per call, then one ``wait()`` for all of them."""
        from vifplug import GenericVIFDriver, load_vifs

        specs = vif_specs(count, salt)
        vifs = load_vifs([vif_json(spec) for spec in specs])
        driver = GenericVIFDriver(firewall=True)
        calls = []
        with private_ovs() as (netns, ovs), self.vifplug_host(netns, ovs) as host:
            with self.profiled():
                start = time.perf_counter()
                for vif in vifs:
                    began = time.perf_counter()
                    driver.plug(vif, host, instance_uuid=INSTANCE_UUID, wait=False)
                    calls.append(time.perf_counter() - began)
                committed = time.perf_counter()
                while True:
                    try:
                        driver.wait(vifs, host, timeout=BURST_TIMEOUT)
                        break
                    except OSError as error:
                        # vifplug.host.ready drains its link-event socket without handling
                        # ENOBUFS (the socket overflowed: events were lost). Until it does,
                        # wait again (it re-reads every VIF) and count it, inside the clock.
                        if error.errno != errno.ENOBUFS:
                            raise
                        self.enobufs += 1
                ready = time.perf_counter()
            _check_ports(ovs, count)
            _check_ready(ovs, specs, "vifplug")
        return Burst(calls, committed - start, ready - start)

    def prefill(self, netns: Any, ovs: Any, specs: list[dict[str, Any]]) -> None:
        """The bridge's existing ports, plugged by vifplug in one batch (untimed)."""
        from vifplug import GenericVIFDriver, load_vifs

        with self.vifplug_host(netns, ovs) as host:
            GenericVIFDriver(firewall=True).plug_many(
                load_vifs([vif_json(spec) for spec in specs]), host,
                instance_uuid=INSTANCE_UUID)
        # ovs-vswitchd keeps working for seconds after the ports are ready (4.4 s after 450):
        # a transaction that waits for it returns once it has caught up, so neither side's
        # measurement starts while it still digests the prefill.
        subprocess.run(["ovs-vsctl", f"--db={ovs.db}", "--timeout=300", "set", "Open_vSwitch",
                        ".", "external_ids:vifplug-bench=settled"], check=True)

    def vifplug_parallel(self, present: int, count: int, salt: int) -> Parallel:
        """``count`` threads each ``plug()`` (waiting until ready) one VIF through one Host."""
        from vifplug import GenericVIFDriver, load_vifs

        specs = vif_specs(present + count, salt)
        vifs = load_vifs([vif_json(spec) for spec in specs[present:]])
        driver = GenericVIFDriver(firewall=True)
        start = threading.Barrier(count + 1)
        errors: list[BaseException] = []

        def plug(vif: Any) -> None:
            start.wait()
            try:
                driver.plug(vif, host, instance_uuid=INSTANCE_UUID)
            except BaseException as exc:
                errors.append(exc)

        with private_ovs() as (netns, ovs):
            self.prefill(netns, ovs, specs[:present])
            with self.vifplug_host(netns, ovs) as host:
                threads = [threading.Thread(target=plug, args=(vif,)) for vif in vifs]
                for thread in threads:
                    thread.start()
                with self.profiled():
                    start.wait()
                    began = time.perf_counter()
                    for thread in threads:
                        thread.join()
                    seconds = time.perf_counter() - began
                if errors:
                    raise errors[0]
                transactions = host.transactions.stats.transactions
            _check_ports(ovs, present + count)
            _check_ready(ovs, specs[present:], "vifplug")
        return Parallel(seconds, transactions)

    # --- os-vif ---

    def os_vif_parallel(self, present: int, count: int, salt: int) -> Parallel:
        """``count`` threads of os-vif's worker each ``os_vif.plug`` one VIF."""
        specs = vif_specs(present + count, salt)
        with private_ovs() as (netns, ovs):
            self.prefill(netns, ovs, specs[:present])
            with OsVifWorker(netns, ovs) as worker:
                self.os_vif_version = worker.version
                seconds = worker.run_parallel("plug", specs[present:])
            _check_ports(ovs, present + count)
            _check_ready(ovs, specs[present:], "os-vif")
        return Parallel(seconds)

    def parallel(self, present: int, count: int) -> tuple[list[Parallel], list[Parallel]]:
        """vifplug's and os-vif's, ``rounds`` times alternately: ``(vifplug's, os-vif's)``."""
        key = (present, count)
        if key not in self.parallels:
            self.parallels[key] = self.alternate(self.vifplug_parallel, self.os_vif_parallel,
                                                 present, count, 0x600)
        return self.parallels[key]

    def os_vif_burst(self, count: int, salt: int) -> Burst:
        """``os_vif.plug`` one VIF per call; each returns once ovs-vswitchd has applied it, so
        the last VIF is ready when the last call returns (checked: every ofport >= 1)."""
        specs = vif_specs(count, salt)
        with private_ovs() as (netns, ovs), OsVifWorker(netns, ovs) as worker:
            self.os_vif_version = worker.version
            calls = worker.run("plug", specs)
            _check_ports(ovs, count)
            _check_ready(ovs, specs, "os-vif")
        return Burst(calls, sum(calls), sum(calls))

    def burst(self, count: int) -> tuple[list[Burst], list[Burst]]:
        """vifplug's and os-vif's bursts, ``rounds`` times alternately (and alternating who goes
        first), each on a fresh OVS: ``(vifplug's, os-vif's)``; ``burst`` and ``growth`` share
        them."""
        if count not in self.bursts:
            self.bursts[count] = self.alternate(self.vifplug_burst, self.os_vif_burst, count,
                                                0x500)
        return self.bursts[count]

    def alternate(self, ours: Callable[..., _M], theirs: Callable[..., _M], *args: Any
                  ) -> tuple[list[_M], list[_M]]:
        """``ours(*args)`` and ``theirs(*args)``, ``rounds`` times, alternating who goes first
        (other load on the machine hits both alike): both lists of measurements."""
        measured: tuple[list[_M], list[_M]] = ([], [])
        for index in range(self.rounds):
            order = [(measured[0], ours), (measured[1], theirs)]
            for runs, measure in order if index % 2 == 0 else reversed(order):
                runs.append(measure(*args))
        return measured

    # --- the floor ---

    def floor_batch(self, count: int, salt: int, kind: str) -> Run:
        specs = vif_specs(count, salt)
        with private_ovs() as (netns, ovs):
            floor = Floor(netns.name, ovs.db)
            try:
                floor.api.br_exists(BRIDGE).execute(check_error=True)
                start = time.perf_counter()
                (floor.plug_hybrid if kind == "hybrid" else floor.plug_manual)(specs)
                plugged = time.perf_counter()
                _check_ports(ovs, count)
                _check_ready(ovs, specs, "floor", "qvo" if kind == "hybrid" else "tap")
                middle = time.perf_counter()
                floor.unplug(specs, kind)
                done = time.perf_counter()
                _check_ports(ovs, 0)
            finally:
                floor.close()
        return Run([plugged - start], [done - middle], batch=count)

    def batch_pair(self, count: int, kind: str, salt: int) -> tuple[Run, Run]:
        """vifplug's and the floor's batch, ``rounds`` times, alternating (and alternating who
        goes first): other load on the machine hits both alike. Each: the median round."""
        ours, floors = self.alternate(self.vifplug_batch, self.floor_batch, count, salt, kind)
        return _median_run(ours), _median_run(floors)

    def same_end_state(self, kind: str) -> None:
        """vifplug's and the floor's plugs of the same 5 VIFs leave equal hosts."""
        from vifplug import GenericVIFDriver, load_vifs

        specs = vif_specs(5, 0xEEE)
        states = []
        with private_ovs() as (netns, ovs), self.vifplug_host(netns, ovs) as host:
            GenericVIFDriver(firewall=True).plug_many(
                load_vifs([vif_json(spec, kind) for spec in specs]), host,
                instance_uuid=INSTANCE_UUID)
            states.append(host_state(netns, ovs))
        with private_ovs() as (netns, ovs):
            floor = Floor(netns.name, ovs.db)
            try:
                (floor.plug_hybrid if kind == "hybrid" else floor.plug_manual)(specs)
                states.append(host_state(netns, ovs))
            finally:
                floor.close()
        if states[0] != states[1]:
            raise SystemExit(f"the floor does not do what vifplug does ({kind}):\n"
                             + "\n".join(_diff(states[0], states[1])))


def _median_run(runs: list[Run]) -> Run:
    """One batch Run of the median plug and median unplug time of ``runs``."""
    return Run([statistics.median(run.plug[0] for run in runs)],
               [statistics.median(run.unplug[0] for run in runs)], batch=runs[0].batch,
               committed=[statistics.median(run.committed[0] for run in runs)]
               if all(run.committed for run in runs) else [])


def _check_ports(ovs: Any, count: int) -> None:
    found = len(ovs.ports(BRIDGE))
    if found != count:
        raise SystemExit(f"expected {count} ports on {BRIDGE}, found {found}")


def _check_ready(ovs: Any, specs: list[dict[str, Any]], who: str, role: str = "qvo") -> None:
    """Every VIF's OVS port has an OpenFlow port, as ``ovs-vsctl get Interface X ofport`` reads
    it (one ovs-vsctl for all: its commands joined by ``--``); else no figure counts."""
    ports = [names(spec)[role] for spec in specs]
    argv = ["ovs-vsctl", f"--db={ovs.db}", "--timeout=30"]
    for index, port in enumerate(ports):
        argv += (["--"] if index else []) + ["get", "Interface", port, "ofport"]
    out = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    ofports = out.stdout.split()
    if out.returncode != 0 or len(ofports) != len(ports):
        raise SystemExit(f"{who}: ovs-vsctl get Interface … ofport failed: {out.stderr.strip()}")
    bad = [f"{port}={ofport}" for port, ofport in zip(ports, ofports, strict=True)
           if not ofport.isdigit() or int(ofport) < 1]
    if bad:
        raise SystemExit(f"{who}: {len(bad)} of {len(ports)} ports have no OpenFlow port: "
                         + ", ".join(bad[:10]))


def _diff(ours: Any, theirs: Any, path: str = "") -> Iterator[str]:
    if isinstance(ours, dict) and isinstance(theirs, dict):
        for key in sorted(set(ours) | set(theirs), key=str):
            yield from _diff(ours.get(key), theirs.get(key), f"{path}/{key}")
    elif ours != theirs:
        yield f"  {path}: vifplug {ours!r}, floor {theirs!r}"


# --- scenarios -----------------------------------------------------------------------------------

#: One row of the table: label, N, and the figures (ms/VIF) per repeat.
Row = dict[str, Any]


def scenario_single(bench: Bench, sizes: dict[str, Any]) -> list[Row]:
    n = sizes["single"]
    ours, theirs = bench.single(n)
    return [
        {"label": "hybrid, one per call: plug", "n": n, "os-vif": theirs.plug_ms,
         "vifplug": ours.plug_ms},
        {"label": "hybrid, one per call: unplug", "n": n, "os-vif": theirs.unplug_ms,
         "vifplug": ours.unplug_ms},
        {"label": "hybrid, one per call: plug+unplug", "n": n,
         "os-vif": theirs.plug_ms + theirs.unplug_ms, "vifplug": ours.plug_ms + ours.unplug_ms,
         "goal": ("os-vif/vifplug", ">=", GOAL_SINGLE),
         "goal2": ("os-vif/vifplug", ">=", GOAL_SINGLE_ISSUE9)},
    ]


def _median(runs: list[Burst], figure: Any) -> float:
    return float(statistics.median(figure(run) for run in runs))


def scenario_burst(bench: Bench, sizes: dict[str, Any]) -> list[Row]:
    n = sizes["burst"]
    ours, theirs = bench.burst(n)

    def per_vif(seconds: float) -> float:
        return 1000 * seconds / n

    return [
        {"label": "burst: all committed (vifplug wait=False)", "n": n,
         "os-vif": _median(theirs, lambda b: per_vif(b.committed)),
         "vifplug": _median(ours, lambda b: per_vif(b.committed))},
        {"label": "burst: until the last is ready", "n": n,
         "os-vif": _median(theirs, lambda b: per_vif(b.ready)),
         "vifplug": _median(ours, lambda b: per_vif(b.ready)),
         "goal": ("vifplug/os-vif", "<=", GOAL_BURST)},
    ]


def scenario_parallel(bench: Bench, sizes: dict[str, Any]) -> list[Row]:
    present, n = sizes["parallel"]
    ours, theirs = bench.parallel(present, n)
    transactions = [run.transactions for run in ours if run.transactions is not None]
    return [
        {"label": f"parallel: {n} threads plug one VIF each onto {present} ports, until all "
                  f"ready (vifplug: {min(transactions)}-{max(transactions)} OVSDB "
                  "transactions)", "n": n,
         "os-vif": _median(theirs, lambda p: 1000 * p.seconds / n),
         "vifplug": _median(ours, lambda p: 1000 * p.seconds / n),
         "goal": ("vifplug/os-vif", "<=", GOAL_PARALLEL)},
    ]


def scenario_batch(bench: Bench, sizes: dict[str, Any]) -> list[Row]:
    bench.check_once("hybrid")
    rows = []
    for n in sizes["batch"]:
        theirs = None if bench.no_os_vif else bench.single(n)[1]
        ours, floor = bench.batch_pair(n, "hybrid", 0x200)
        rows += [
            {"label": "hybrid, batched: plug", "n": n,
             "os-vif": None if theirs is None else theirs.plug_ms,
             "vifplug": ours.plug_ms, "floor": floor.plug_ms,
             "goal": ("vifplug/floor", "<=", GOAL_BATCH_PLUG_VS_FLOOR)},
            {"label": "hybrid, batched: plug, of which until committed", "n": n,
             "vifplug": ours.committed_ms},
            {"label": "hybrid, batched: unplug", "n": n,
             "os-vif": None if theirs is None else theirs.unplug_ms,
             "vifplug": ours.unplug_ms, "floor": floor.unplug_ms},
            {"label": "hybrid, batched: plug+unplug", "n": n,
             "os-vif": None if theirs is None else theirs.plug_ms + theirs.unplug_ms,
             "vifplug": ours.plug_ms + ours.unplug_ms, "floor": floor.plug_ms + floor.unplug_ms,
             "goal": None if theirs is None else ("os-vif/vifplug", ">=", GOAL_BATCH_VS_OS_VIF),
             "goal2": ("vifplug/floor", "<=", GOAL_BATCH_BOTH_VS_FLOOR)},
        ]
    return rows


def scenario_growth(bench: Bench, sizes: dict[str, Any]) -> list[Row]:
    n = sizes["burst"]
    # burst's plugs: vifplug's to commit (wait=False), os-vif's (always waiting for vswitchd).
    ours, theirs = bench.burst(n)
    return [
        {"label": "growth: plug call, first tenth", "n": n,
         "os-vif": _median(theirs, lambda b: _tenth_ms(b.calls, last=False)),
         "vifplug": _median(ours, lambda b: _tenth_ms(b.calls, last=False))},
        {"label": "growth: plug call, last tenth", "n": n,
         "os-vif": _median(theirs, lambda b: _tenth_ms(b.calls, last=True)),
         "vifplug": _median(ours, lambda b: _tenth_ms(b.calls, last=True))},
        {"label": "growth: last tenth / first tenth (ratio)", "n": n,
         "os-vif": _median(theirs, lambda b: _tenth_ms(b.calls, True) / _tenth_ms(b.calls, False)),
         "vifplug": _median(ours, lambda b: _tenth_ms(b.calls, True) / _tenth_ms(b.calls, False)),
         "ratio": True, "goal": ("vifplug", "<=", GOAL_GROWTH)},
    ]


def scenario_manual(bench: Bench, sizes: dict[str, Any]) -> list[Row]:
    bench.check_once("manual")
    n = sizes["manual"]
    ours, floor = bench.batch_pair(n, "manual", 0x400)
    return [
        {"label": "manual (TAP + port), batched: plug", "n": n, "vifplug": ours.plug_ms,
         "floor": floor.plug_ms, "goal": ("vifplug/floor", "<=", GOAL_BATCH_PLUG_VS_FLOOR)},
        {"label": "manual (TAP + port), batched: plug, of which until committed", "n": n,
         "vifplug": ours.committed_ms},
        {"label": "manual (TAP + port), batched: unplug", "n": n, "vifplug": ours.unplug_ms,
         "floor": floor.unplug_ms},
        {"label": "manual (TAP + port), batched: plug+unplug", "n": n,
         "vifplug": ours.plug_ms + ours.unplug_ms, "floor": floor.plug_ms + floor.unplug_ms,
         "goal": ("vifplug/floor", "<=", GOAL_BATCH_BOTH_VS_FLOOR)},
    ]


SCENARIO_FUNCS = {"single": scenario_single, "burst": scenario_burst,
                  "growth": scenario_growth, "parallel": scenario_parallel,
                  "batch": scenario_batch, "manual": scenario_manual}

# --- report --------------------------------------------------------------------------------------


def _ratio(row: Row, spec: str) -> float | None:
    if "/" not in spec:  # a figure that is itself a ratio
        return None if row.get(spec) is None else float(row[spec])
    top, bottom = spec.split("/")
    if row.get(top) is None or row.get(bottom) is None:
        return None
    return float(row[top] / row[bottom])


def _cell(values: list[float], digits: int = 1) -> str:
    if not values:
        return "-"
    median = statistics.median(values)
    if len(values) == 1:
        return f"{median:.{digits}f}"
    return f"{median:.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def report(repeats: list[list[Row]], info: dict[str, str]) -> str:
    """Median over repeats (min-max in brackets when more than one) of every figure."""
    lines = [
        "Plugging, ms per VIF unless the work says otherwise (wall clock; median over "
        f"{len(repeats)} repeat(s), min-max in brackets)",
        "  " + ", ".join(f"{key} {value}" for key, value in info.items()),
        "",
        "| work | N | os-vif | vifplug | floor | os-vif/vifplug | vifplug/floor | goal |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for index, row in enumerate(repeats[0]):
        rows = [rep[index] for rep in repeats]
        cells = [_cell([r[k] for r in rows if r.get(k) is not None])
                 for k in ("os-vif", "vifplug", "floor")]
        ratios = [_cell([x for r in rows if (x := _ratio(r, spec)) is not None], 2)
                  if not row.get("ratio") else "-" for spec in ("os-vif/vifplug", "vifplug/floor")]
        verdicts = []
        for goal_key in ("goal", "goal2"):
            goal = row.get(goal_key)
            if goal is None:
                continue
            spec, op, target = goal
            values = [x for r in rows if (x := _ratio(r, spec)) is not None]
            value = statistics.median(values)
            met = value >= target if op == ">=" else value <= target
            if spec == "vifplug/os-vif":
                ratios[0] = _cell([1 / v for v in values], 2)
            verdicts.append(f"{spec} {op} {target}: {'met' if met else 'MISSED'} "
                            f"({value:.2f})")
        lines.append(f"| {row['label']} | {row['n']} | {cells[0]} | {cells[1]} | {cells[2]} | "
                     f"{ratios[0]} | {ratios[1]} | {'; '.join(verdicts)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small N: a smoke run (~1 min)")
    parser.add_argument("--only", choices=SCENARIOS, action="append",
                        help="run only this scenario (repeatable)")
    parser.add_argument("--repeats", type=int, default=1, help="whole runs to take (1)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="batch and manual: vifplug/floor rounds per repeat, alternating; "
                             "burst and growth: vifplug/os-vif bursts; the median is kept (3)")
    parser.add_argument("--ovsdb-backend", choices=("native", "vsctl"), default="native",
                        help="vifplug's OVSDB backend (os-vif and the floor: native)")
    parser.add_argument("--no-os-vif", action="store_true",
                        help="batch: compare with the floor only (skip os-vif one per call)")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile vifplug's calls; print the top functions")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("run as root (network namespaces, OVS)")
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

    sizes = SIZES[args.quick]
    chosen = args.only or list(SCENARIOS)
    profile = cProfile.Profile() if args.profile else None
    repeats: list[list[Row]] = []
    for repeat in range(args.repeats):
        bench = Bench(args.ovsdb_backend, profile, args.rounds, no_os_vif=args.no_os_vif)
        rows: list[Row] = []
        for name in SCENARIOS:
            if name in chosen:
                started = time.perf_counter()
                rows += SCENARIO_FUNCS[name](bench, sizes)
                print(f"[repeat {repeat + 1}/{args.repeats}] {name}: "
                      f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        if bench.enobufs:
            print(f"[repeat {repeat + 1}/{args.repeats}] burst: vifplug's wait() raised ENOBUFS "
                  f"{bench.enobufs} time(s), waited again (inside the clock)", file=sys.stderr)
        shutil.rmtree(bench.lock_dir, ignore_errors=True)
        repeats.append(rows)
    info = {
        "machine": f"{platform.node()} ({os.cpu_count()} CPUs, {platform.machine()}, "
                   f"Linux {platform.release()})",
        "Python": platform.python_version(),
        "os-vif": bench.os_vif_version if bench.os_vif_version != "?" else _version("os-vif"),
        "ovsdbapp": _version("ovsdbapp"),
        "pyroute2": _version("pyroute2"),
        "OVS": ovs_version(),
        "vifplug OVSDB backend": args.ovsdb_backend,
    }
    print(report(repeats, info))
    if args.json is not None:
        args.json.write_text(json.dumps({"info": info, "repeats": repeats}, indent=1))
    if profile is not None:
        print()
        pstats.Stats(profile).sort_stats("cumulative").print_stats(30)
    return 0


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    sys.exit(main())
