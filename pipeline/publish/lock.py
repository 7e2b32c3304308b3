"""A lock on an output folder, held from staging to publish (no in-process state; works on NFS).

The lock is a file ``.<name>.lock`` beside the output folder, created with ``O_CREAT | O_EXCL``
(atomic on local filesystems and NFSv3+), holding the owner's pid, host, start time and a random
token. A lock is stale when its owner is a dead process on this host, or when its file has not
been touched for :data:`STALE_AFTER` seconds (an owner on another host refreshes it while it
runs, see :meth:`OutputLock.heartbeat`). Taking over a stale lock is serialised by a second
``O_EXCL`` file (``.<name>.lock.break``), so two runs can never both take it over.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import socket
import time
from pathlib import Path

from pipeline.errors import AuditError

STALE_AFTER = 600.0  # seconds without a heartbeat before another host's lock counts as abandoned
HEARTBEAT_EVERY = 30.0


class LockedError(AuditError):
    """Another audit holds the output folder."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _create(path: Path, content: dict) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(content, fh)
    return True


def _read(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # unreadable or half-written: judged by its age alone


class OutputLock:
    """``with OutputLock(folder):`` — raises LockedError naming the other run when the folder is busy."""

    def __init__(self, folder: Path, *, stale_after: float = STALE_AFTER):
        self.folder = folder
        self.path = folder.parent / f".{folder.name}.lock"
        self.breaker = folder.parent / f".{folder.name}.lock.break"
        self.stale_after = stale_after
        self.owner = {"pid": os.getpid(), "host": socket.gethostname(), "token": secrets.token_hex(8),
                      "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        self.took_over: dict | None = None  # the stale owner this run replaced, for a message
        self._beat = 0.0

    def _stale(self, info: dict) -> bool:
        if info.get("host") == self.owner["host"] and isinstance(info.get("pid"), int):
            return not _alive(info["pid"])
        try:
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return True
        return age > self.stale_after

    def acquire(self) -> "OutputLock":
        try:
            self.folder.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise AuditError(f"{self.folder}: expected a folder the audit can write its outputs to, found an error: {exc.strerror or exc}") from None
        for _ in range(3):
            if _create(self.path, self.owner):
                self._beat = time.time()
                return self
            info = _read(self.path)
            if info is None:
                continue  # released meanwhile: try again
            if not self._stale(info):
                raise LockedError(
                    f"{self.folder}: expected an output folder no other audit is writing, found one in progress "
                    f"(pid {info.get('pid', '?')} on {info.get('host', '?')}, started {info.get('started', '?')}; lock {self.path})")
            self._break(info)
        raise LockedError(f"{self.folder}: could not take the lock {self.path} (another audit keeps taking it)")

    def _break(self, stale: dict) -> None:
        """Remove a stale lock, one breaker at a time; a breaker left by a crash expires after a minute."""
        if not _create(self.breaker, self.owner):
            try:
                if time.time() - self.breaker.stat().st_mtime > 60:
                    self.breaker.unlink(missing_ok=True)
            except FileNotFoundError:
                pass
            time.sleep(0.05)
            return
        try:
            if _read(self.path) == stale:  # still the same stale owner, not a fresh lock someone just took
                self.path.unlink(missing_ok=True)
                self.took_over = stale
        finally:
            self.breaker.unlink(missing_ok=True)

    def heartbeat(self) -> None:
        """Touch the lock now and then so runs on other hosts see it is alive."""
        now = time.time()
        if now - self._beat >= HEARTBEAT_EVERY:
            self._beat = now
            try:
                os.utime(self.path)
            except OSError:
                pass

    def release(self) -> None:
        if (_read(self.path) or {}).get("token") == self.owner["token"]:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> "OutputLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
