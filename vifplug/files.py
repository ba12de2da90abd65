"""Replacing a small state file so that a crash leaves the old text or the new, never half.

Light (the qemu hook uses it through :mod:`vifplug.pools`): the standard library only.
"""

from __future__ import annotations

import contextlib
import os
import tempfile

__all__ = ["replace_durably"]


def replace_durably(path: str | os.PathLike[str], text: str) -> None:
    """Replace ``path``'s content with ``text``: a temporary file in the same directory,
    fsynced, renamed over it, then the directory fsynced (the rename itself survives a crash)."""
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    fd, temp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
