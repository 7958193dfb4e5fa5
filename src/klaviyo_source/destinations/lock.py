"""An exclusive lock file with the holder's pid, so two syncs never write one DuckDB file at once.

`flock` locks belong to the open file: the kernel drops them when the holder exits, even on
kill -9, so a stale lock file never blocks the next sync. A clean exit removes the file.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from klaviyo_source.destinations.base import DestinationBusyError


class FileLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, what: str) -> None:
        """Take the lock or raise DestinationBusyError naming the holder's pid."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise DestinationBusyError(
                    f"Another sync (pid {holder}) is writing to {what}; "
                    "wait for it to finish, then run again."
                ) from None
            try:  # the holder we waited for may have removed the file meanwhile: lock the one in place
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            self.path.unlink(missing_ok=True)  # while still held: no one can be waiting on this inode
            os.close(self._fd)  # closing drops the flock
            self._fd = None
