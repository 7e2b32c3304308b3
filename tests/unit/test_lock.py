"""The output-folder lock: busy folders refused with the owner named, dead owners taken over."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from pipeline.publish.lock import LockedError, OutputLock


def test_second_holder_is_refused_naming_the_first(tmp_path):
    out = tmp_path / "report"
    with OutputLock(out):
        with pytest.raises(LockedError) as exc:
            OutputLock(out).acquire()
    msg = str(exc.value)
    assert str(out) in msg and f"pid {os.getpid()} on {socket.gethostname()}" in msg and "started 20" in msg
    assert not (tmp_path / ".report.lock").exists()  # released on exit
    with OutputLock(out):  # and can be taken again
        pass


def test_lock_of_a_dead_process_on_this_host_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    stale = {"pid": int(dead), "host": socket.gethostname(), "token": "x", "started": "2026-01-01T00:00:00+00:00"}
    (tmp_path / ".report.lock").write_text(json.dumps(stale))
    lock = OutputLock(tmp_path / "report").acquire()
    assert lock.took_over == stale
    assert json.loads((tmp_path / ".report.lock").read_text())["pid"] == os.getpid()
    lock.release()


def test_another_hosts_lock_is_respected_until_it_stops_beating(tmp_path):
    other = {"pid": 1, "host": "some-other-host", "token": "y", "started": "2026-01-01T00:00:00+00:00"}
    path = tmp_path / ".report.lock"
    path.write_text(json.dumps(other))
    with pytest.raises(LockedError, match="pid 1 on some-other-host"):
        OutputLock(tmp_path / "report").acquire()
    old = time.time() - 3600
    os.utime(path, (old, old))  # no heartbeat for an hour
    lock = OutputLock(tmp_path / "report").acquire()
    assert lock.took_over == other
    lock.release()


def test_a_held_lock_survives_a_release_by_someone_else(tmp_path):
    first = OutputLock(tmp_path / "r").acquire()
    second = OutputLock(tmp_path / "r")
    second.release()  # not its lock: nothing happens
    assert (tmp_path / ".r.lock").exists()
    first.release()
