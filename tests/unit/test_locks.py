"""Per-VIF locks: exclusive across processes, and removed by unplug without a race."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from vifplug.host.apply import vif_locks

HOLD = """
import sys, time
from pathlib import Path
from vifplug.host.apply import vif_locks
with vif_locks(["v1"], "host", Path(sys.argv[1]), remove=sys.argv[2] == "remove"):
    print("locked", flush=True)
    time.sleep(float(sys.argv[3]))
"""


def holder(lock_dir: Path, remove: bool, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(lock_dir),
                             "remove" if remove else "keep", str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline() == "locked\n"
    return proc


def finish(proc: subprocess.Popen[str]) -> None:
    proc.communicate(timeout=30)


def test_exclusive_across_processes(tmp_path: Path) -> None:
    proc = holder(tmp_path, remove=False, seconds=0.5)
    start = time.monotonic()
    with vif_locks(["v1"], "host", tmp_path):
        waited = time.monotonic() - start
    finish(proc)
    assert waited > 0.2  # it had to wait for the other process to let go
    with vif_locks(["v2"], "host", tmp_path):  # another VIF is never blocked
        pass


def test_unplug_removes_the_file_and_a_waiter_takes_a_fresh_one(tmp_path: Path) -> None:
    proc = holder(tmp_path, remove=True, seconds=0.5)
    with vif_locks(["v1"], "host", tmp_path):
        # the holder deleted its file; we hold the one that exists now
        assert (tmp_path / "host-v1.lock").exists()
        other = subprocess.run([sys.executable, "-c", "import fcntl, os, sys\n"
                                f"fd = os.open({str(tmp_path / 'host-v1.lock')!r}, os.O_RDWR)\n"
                                "fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"],
                               capture_output=True, check=False)
        assert other.returncode != 0  # truly locked by us
    finish(proc)
    with vif_locks(["v1"], "host", tmp_path, remove=True):
        pass
    assert list(tmp_path.iterdir()) == []
