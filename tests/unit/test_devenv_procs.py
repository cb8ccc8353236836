"""devenv's process bookkeeping under parallel use: the lock, lost pid files, argv records."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest

from devenv import config, procs


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "STATE_DIR", tmp_path)
    monkeypatch.setattr(config, "PID_DIR", tmp_path / "pids")
    monkeypatch.setattr(config, "LOG_DIR", tmp_path / "logs")
    return tmp_path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((config.HOST, 0))
        return s.getsockname()[1]


def _server(port: int) -> procs.Service:
    argv = [sys.executable, "-m", "http.server", "--bind", config.HOST, str(port)]
    return procs.Service("web", argv, port, lambda: procs.tcp_open(port))


def test_the_lock_is_reentrant_in_one_thread(state):
    with procs.devenv_lock(), procs.devenv_lock():
        pass
    # Released: another process can take it at once.
    code = (
        "import fcntl,sys; f=open(sys.argv[1],'w'); "
        "fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB); print('free')"
    )
    out = subprocess.run([sys.executable, "-c", code, str(state / ".lock")], capture_output=True)
    assert out.stdout.strip() == b"free"


def test_a_running_service_whose_pid_file_was_lost_is_adopted(state):
    svc = _server(_free_port())
    pid = procs.spawn(svc)
    try:
        procs.wait_ready(svc, pid, timeout=20)
        (config.PID_DIR / "web.pid").unlink()
        assert procs.running_pid("web") is None
        assert procs.adopt(svc) == pid
        assert procs.running_pid("web") == pid
        assert procs.ensure(svc) == "running"
        # Another command line on that port is not ours to adopt.
        other = procs.Service("other", [*svc.argv, "--directory", "/"], svc.port, svc.ready)
        assert procs.adopt(other) is None
    finally:
        procs.stop("web")
    assert procs.running_pid("web") is None


def test_a_losing_parallel_start_keeps_the_winners_pid_file(state):
    port = _free_port()
    svc = _server(port)
    winner = procs.spawn(svc)
    try:
        procs.wait_ready(svc, winner, timeout=20)
        record = (config.PID_DIR / "web.pid").read_text()
        # A loser started under the same name exits at once (port taken); it only removes
        # the pid file if that file names the loser.
        loser = subprocess.Popen([sys.executable, "-c", "raise SystemExit(1)"])
        loser.wait()
        procs._forget("web", loser.pid)
        assert (config.PID_DIR / "web.pid").read_text() == record
        assert json.loads(record)["argv"] == svc.argv == procs.recorded_argv("web")
    finally:
        procs.stop("web")
    deadline = time.monotonic() + 5
    while procs.tcp_open(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not procs.tcp_open(port)
