"""Installing the qemu hook where libvirt looks for it.

libvirt ≥ 6.5 runs every executable in ``hooks/qemu.d/`` (vifplug goes there as ``vifplug``);
older ones run only ``hooks/qemu``. libvirt starts hooks with an almost empty environment, so the
installed copy names the interpreter vifplug is installed in (``sys.executable``) instead of
trusting PATH, and the network map's path when one is given. A ``hooks/qemu`` that is not
vifplug's is never overwritten unless ``force`` is given, and then it is kept as a backup that
uninstall puts back.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from vifplug.errors import VifError, VifplugError
from vifplug.spec import POOLS_STATE
from vifplug.version import LibvirtVersion

__all__ = ["MARKER", "Installed", "hook_text", "install", "uninstall"]

#: Marks a hook file as vifplug's (so it may be replaced or removed).
MARKER = "# vifplug-libvirt-hook"
#: libvirt runs hooks/qemu.d/* since 6.5.0.
HOOK_DIR_SINCE = LibvirtVersion(6, 5, 0)
BACKUP_SUFFIX = ".vifplug-backup"

Layout = Literal["auto", "qemu.d", "qemu"]


class HookInstallError(VifplugError):
    """The hook cannot be installed or removed as asked (the message says why and what to do)."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class Installed:
    path: Path
    backup: Path | None = None


def hook_text(python: str, networks: str | None = None, pools: str | None = None) -> str:
    """The installed hook: the given interpreter, exit 0 at once for every other operation."""
    setenv = ""
    for name, value in (("VIFPLUG_NETWORKS", networks), ("VIFPLUG_POOLS", pools)):
        if value is not None:
            setenv += f'os.environ["{name}"] = {str(value)!r}\n'
    return f"""#!{python} -I
{MARKER} — installed by `vifplug hook install`; `vifplug hook uninstall` removes it.
# libvirt runs it as: qemu DOMAIN OP SUBOP EXTRA, with the domain XML on stdin.
import os
import sys

if len(sys.argv) < 4 or (sys.argv[2] not in ("migrate", "restore") or sys.argv[3] != "begin") \
        and sys.argv[2:4] != ["release", "end"]:
    sys.exit(0)  # every other operation: nothing to do, and nothing imported
{setenv}
stdin = sys.stdin.buffer
if sys.argv[2] == "release":
    try:
        xml = stdin.read()
    except OSError:  # no XML to read: nothing of a transition to remove
        xml = b""
    if b"hybrid=" not in xml \
            and not os.path.exists(os.environ.get("VIFPLUG_POOLS") or {POOLS_STATE!r}):
        sys.exit(0)  # a guest stopped: no hybrid path of a transition, no NIC pools here
    import io
    stdin = io.BytesIO(xml)

from vifplug.hook import main

sys.exit(main(sys.argv[1:], stdin, sys.stdout.buffer, sys.stderr))
"""


def _libvirt_version() -> LibvirtVersion | None:
    libvirtd = shutil.which("libvirtd")
    if libvirtd is None:
        return None
    try:
        out = subprocess.run([libvirtd, "--version"], capture_output=True, text=True,
                             timeout=10, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"(\d+\.\d+\.\d+)", out)
    return LibvirtVersion.parse(found.group(1)) if found else None


def _is_ours(path: Path) -> bool:
    try:
        return MARKER in path.read_text(errors="replace")[:2048]
    except OSError:
        return False


def _layout(layout: Layout, hooks: Path) -> Literal["qemu.d", "qemu"]:
    if layout != "auto":
        return layout
    version = _libvirt_version()
    if version is not None:
        return "qemu.d" if version >= HOOK_DIR_SINCE else "qemu"
    return "qemu.d" if (hooks / "qemu.d").is_dir() else "qemu"


def install(libvirt_dir: Path = Path("/etc/libvirt"), *, networks: str | None = None,
            layout: Layout = "auto", force: bool = False,
            python: str | None = None, pools: str | None = None) -> Installed:
    """Install the hook under ``libvirt_dir/hooks``; return where (and any backup made)."""
    if not libvirt_dir.is_dir():
        raise HookInstallError(f"--libvirt-dir: {libvirt_dir} is not a directory")
    for option, value in (("--networks", networks), ("--pools", pools)):
        if value is not None and not Path(value).is_absolute():
            raise HookInstallError(f"{option}: must be an absolute path (libvirt runs the hook "
                                   f"from its own directory), got {value!r}")
    hooks = libvirt_dir / "hooks"
    where = _layout(layout, hooks)
    target = hooks / "qemu.d" / "vifplug" if where == "qemu.d" else hooks / "qemu"
    backup = None
    if where == "qemu" and target.exists() and not _is_ours(target):
        if not force:
            raise HookInstallError(
                f"{target} exists and is not vifplug's: refusing to overwrite it. Merge vifplug "
                "into it by hand, or use --force to keep it as "
                f"{target.name}{BACKUP_SUFFIX} and install vifplug's")
        backup = target.with_name(target.name + BACKUP_SUFFIX)
        target.replace(backup)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = hook_text(python or sys.executable, networks, pools)
    temporary = target.with_name(f".{target.name}.vifplug-new")
    temporary.write_text(text)
    temporary.chmod(0o755)
    os.replace(temporary, target)  # atomic: libvirt never runs a half-written hook
    return Installed(target, backup)


def uninstall(libvirt_dir: Path = Path("/etc/libvirt")) -> list[Path]:
    """Remove vifplug's hook files (only those marked as vifplug's) and put a backed-up foreign
    ``qemu`` hook back; return what was removed."""
    if not libvirt_dir.is_dir():
        raise VifError(f"--libvirt-dir: {libvirt_dir} is not a directory")
    hooks = libvirt_dir / "hooks"
    removed = []
    for candidate in (hooks / "qemu.d" / "vifplug", hooks / "qemu"):
        if candidate.exists() and _is_ours(candidate):
            candidate.unlink()
            removed.append(candidate)
    backup = hooks / f"qemu{BACKUP_SUFFIX}"
    if backup.exists() and not (hooks / "qemu").exists():
        backup.replace(hooks / "qemu")
    return removed
