"""Endurance: a long-lived Host must not grow. N plug+unplug cycles of one hybrid VIF through one
``Host`` (an agent holds one for days), on a private OVS in a fresh network namespace.

Every ``--every`` cycles (1,000) it reports this process's resident memory (``VmRSS`` in
/proc/self/status), open file descriptors (/proc/self/fd), threads (``Threads`` in
/proc/self/status: the OS's count, ovsdbapp's and pyroute2's included), and the netlink replies
the Host's socket holds unread (tests/fixtures/replies.py: pyroute2's queues and the kernel's
receive queue). Two more columns tell a leak from the allocator keeping freed memory: the
blocks Python's allocator holds after a ``gc.collect()`` (``sys.getallocatedblocks()``: live
objects), and the bytes glibc's malloc has handed out and not got back (``mallinfo2()``,
``uordblks + hblkhd``: C extensions' memory too).

At the end, a verdict against the goal: **RSS at most +5 MB from cycle 1,000 to the last; fds
and threads the same at every report from cycle 1,000 on** (the first 1,000 cycles are
warm-up: allocator arenas, caches, the ovs library's one-time files).

``--fresh-host`` opens a new Host (a new netlink socket and OVSDB connection) for every cycle
instead, for comparison; its unread count is that of the cycle's Host, just before it closes.

Each cycle really plugs (qbr + veth pair + OVS port with its external_ids, one OVSDB
transaction) and really unplugs; the bridge holds one port at most, so cycles do not slow down.
Run as root, by hand (never by the tests); ~80 ms per cycle here, so the default ~13 min::

    /work/venv/bin/python bench/soak.py                      # 10,000 cycles on one Host
    /work/venv/bin/python bench/soak.py --cycles 2000 --every 200
    /work/venv/bin/python bench/soak.py --fresh-host         # a new Host per cycle
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import platform
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _ovs import INSTANCE_UUID, ovs_version, private_ovs, vif_json, vif_specs

#: RSS may grow this much (KiB) from the first report on.
GOAL_RSS_KB = 5 * 1024


@dataclass(frozen=True)
class Sample:
    cycles: int
    seconds: float
    rss_kb: int
    fds: int
    threads: int
    unread: int
    #: Blocks Python's allocator holds after a collection (live objects).
    blocks: int
    #: Bytes malloc has handed out (None: no mallinfo2 in this libc).
    malloc_kb: int | None


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def _malloc_in_use_kb() -> int | None:
    """glibc's ``mallinfo2()``: bytes in use in the heap plus in mmapped chunks."""
    mallinfo2 = getattr(ctypes.CDLL(None), "mallinfo2", None)
    if mallinfo2 is None:
        return None
    mallinfo2.restype = _Mallinfo2
    info = mallinfo2()
    return int(info.uordblks + info.hblkhd) // 1024


def _status(field: str) -> int:
    """A number field of /proc/self/status (``VmRSS`` in kB, ``Threads``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise LookupError(field)


def sample(cycles: int, seconds: float, unread: Any) -> Sample:
    gc.collect()  # so the block count is live objects, not garbage awaiting a collection
    return Sample(cycles, seconds, _status("VmRSS"), len(os.listdir("/proc/self/fd")),
                  _status("Threads"), unread.queued + int(unread.in_kernel),
                  sys.getallocatedblocks(), _malloc_in_use_kb())


def soak(cycles: int, every: int, fresh_host: bool, other_ports: int = 0) -> list[Sample]:
    from tests.fixtures.replies import unread_replies
    from vifplug import GenericVIFDriver, load_vifs
    from vifplug.host import Host

    vif = load_vifs([vif_json(vif_specs(1, 0x50A)[0])])[0]
    driver = GenericVIFDriver(firewall=True)
    samples: list[Sample] = []
    with private_ovs() as (netns, ovs), tempfile.TemporaryDirectory() as lock_dir:
        def open_host() -> Host:
            return Host(netns=netns.name, ovsdb=ovs.db, lock_dir=Path(lock_dir))

        host = open_host()
        others = load_vifs([vif_json(spec) for spec in vif_specs(other_ports, 0x60B)]) \
            if other_ports else []
        try:
            if others:  # a busy host: other guests' ports stay on br-int throughout
                driver.plug_many(others, host, instance_uuid=INSTANCE_UUID)
            host.netlink.get("lo")  # open the socket and the connection before the clock
            host.ovsdb.bridge_exists("br-int")
            samples.append(sample(0, 0.0, unread_replies(host.netlink)))
            _print(samples[-1], samples[0])
            start = time.perf_counter()
            for cycle in range(1, cycles + 1):
                if fresh_host and cycle > 1:
                    host.close()
                    host = open_host()
                if driver.plug(vif, host, instance_uuid=INSTANCE_UUID).already_done:
                    raise SystemExit(f"cycle {cycle}: the VIF was still plugged")
                if driver.unplug(vif, host).already_done:
                    raise SystemExit(f"cycle {cycle}: unplug found nothing to remove")
                if cycle % every == 0 or cycle == cycles:
                    samples.append(sample(cycle, time.perf_counter() - start,
                                          unread_replies(host.netlink)))
                    _print(samples[-1], samples[0])
            if others:
                driver.unplug_many(others, host)
        finally:
            host.close()
        if ovs.ports("br-int"):
            raise SystemExit(f"ports left on br-int: {ovs.ports('br-int')}")
    return samples


def _print(row: Sample, first: Sample) -> None:
    print(f"  {row.cycles:>6} cycles  {row.seconds:7.0f} s  RSS {row.rss_kb / 1024:6.1f} MB "
          f"({(row.rss_kb - first.rss_kb) / 1024:+.1f})  fds {row.fds}  threads {row.threads}  "
          f"unread {row.unread}  blocks {row.blocks:,}  malloc {_mb(row.malloc_kb)} MB",
          file=sys.stderr, flush=True)


def _mb(kb: int | None) -> str:
    return "?" if kb is None else f"{kb / 1024:.1f}"


def verdict(samples: list[Sample], every: int) -> tuple[bool, str]:
    """The goal, judged from the report at ``every`` cycles (or the first after the start)."""
    base = next((s for s in samples if s.cycles >= every), samples[-1])
    later = [s for s in samples if s.cycles >= base.cycles]
    growth_kb = later[-1].rss_kb - base.rss_kb
    fds = sorted({s.fds for s in later})
    threads = sorted({s.threads for s in later})
    unread = max(s.unread for s in samples)
    checks = [
        (growth_kb <= GOAL_RSS_KB,
         f"RSS {growth_kb / 1024:+.1f} MB from cycle {base.cycles:,} to {later[-1].cycles:,} "
         f"(goal <= +{GOAL_RSS_KB // 1024} MB)"),
        (len(fds) == 1, f"fds {'flat at ' + str(fds[0]) if len(fds) == 1 else fds}"),
        (len(threads) == 1,
         f"threads {'flat at ' + str(threads[0]) if len(threads) == 1 else threads}"),
    ]
    met = all(ok for ok, _ in checks)
    text = "; ".join(f"{what}: {'met' if ok else 'MISSED'}" for ok, what in checks)
    return met, f"{text}; unread netlink replies at most {unread}"


def table(samples: list[Sample], mode: str) -> str:
    lines = [
        f"| cycles ({mode}) | elapsed s | ms/cycle | RSS MB | RSS vs cycle 0 | fds | threads "
        "| unread replies | Python blocks | malloc in use MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    previous = samples[0]
    for row in samples:
        span = row.cycles - previous.cycles
        per_cycle = (f"{1000 * (row.seconds - previous.seconds) / span:.0f}" if span else "-")
        lines.append(
            f"| {row.cycles:,} | {row.seconds:.0f} | {per_cycle} | {row.rss_kb / 1024:.1f} | "
            f"{(row.rss_kb - samples[0].rss_kb) / 1024:+.1f} | {row.fds} | {row.threads} | "
            f"{row.unread} | {row.blocks:,} | {_mb(row.malloc_kb)} |")
        previous = row
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=10_000, help="plug+unplug cycles (10000)")
    parser.add_argument("--every", type=int, default=1_000,
                        help="report every this many cycles; the goal counts from the first "
                             "report (1000)")
    parser.add_argument("--fresh-host", action="store_true",
                        help="a new Host per cycle instead of one for all (for comparison)")
    parser.add_argument("--other-ports", type=int, default=0, metavar="N",
                        help="plug N other hybrid VIFs first, kept on br-int throughout (a busy "
                             "host; plugged and unplugged outside the measurement)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("run as root (network namespaces, OVS)")
    if args.cycles < 1 or args.every < 1:
        parser.error("--cycles and --every must be at least 1")
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

    mode = "a new Host per cycle" if args.fresh_host else "one Host"
    if args.other_ports:
        mode += f", {args.other_ports} other ports"
    print(f"{args.cycles:,} hybrid plug+unplug cycles, {mode}", file=sys.stderr)
    samples = soak(args.cycles, args.every, args.fresh_host, args.other_ports)
    met, said = verdict(samples, args.every)
    info = {
        "machine": f"{platform.node()} ({os.cpu_count()} CPUs, Linux {platform.release()})",
        "Python": platform.python_version(),
        "pyroute2": metadata.version("pyroute2"),
        "ovsdbapp": metadata.version("ovsdbapp"),
        "OVS": ovs_version(),
        "vifplug": _vifplug(),
    }
    print("  " + ", ".join(f"{key} {value}" for key, value in info.items()))
    print()
    print(table(samples, mode))
    print()
    print(f"Verdict ({mode}): {'goal met' if met else 'goal MISSED'}: {said}")
    return 0 if met else 1


def _vifplug() -> str:
    """Where the vifplug measured comes from (a PYTHONPATH copy wins), and its commit."""
    import subprocess

    import vifplug

    where = Path(vifplug.__file__).resolve().parent.parent
    commit = subprocess.run(["git", "-C", str(where), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, check=False).stdout.strip()
    return f"{where} at {commit or '?'}"


if __name__ == "__main__":
    sys.exit(main())
