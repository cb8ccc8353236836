"""The production shape of README's "Running at scale", started for real:
PostgreSQL (a database of this test's own on devenv's server), the Redis broker,
two Celery workers and one beat, each its own process group.

- 20 backups queued at once are spread over both workers and all complete;
- a pending row whose broker message was lost is queued again and completes;
- a worker killed with SIGKILL in the middle of a backup leaves that row failed
  within one reaper period after its heartbeat timeout, every Completed backup
  has its archive, and the other worker goes on working.

The reaper's period and the heartbeat timeout are shortened through the
processes' environment so that this takes about a minute."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import textwrap
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis
from cryptography.fernet import Fernet

from devenv.testing import need
from tests.conftest import policy_env

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
HEARTBEAT_TIMEOUT = 10
REAPER_SECONDS = 2
PENDING_TIMEOUT = 5
BATCH = 20


@dataclass
class Shape:
    env: dict
    database: str
    dsn: str
    store: Path
    logs: Path
    groups: dict = field(default_factory=dict)  # name -> Popen (a process group leader)

    def manage(self, *args: str, script: str = "") -> str:
        command = [sys.executable, "manage.py", *args]
        if script:
            command += ["-c", textwrap.dedent(script)]
        done = subprocess.run(
            command, cwd=REPO, env=self.env, capture_output=True, text=True, timeout=180
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def start(self, name: str, *args: str) -> None:
        log = (self.logs / f"{name}.log").open("w")
        self.groups[name] = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "palette_site", *args],
            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def kill(self, name: str, sig=signal.SIGKILL) -> None:
        process = self.groups[name]
        with suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)

    def wait_ready(self, *workers: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            logs = {w: (self.logs / f"{w}.log").read_text() for w in workers}
            if all(" ready." in text for text in logs.values()):
                return
            for w in workers:
                assert self.groups[w].poll() is None, logs[w][-3000:]
            time.sleep(0.5)
        pytest.fail(f"workers not ready in {timeout} s")

    def rows(self, like: str) -> list[tuple]:
        with psycopg.connect(self.dsn) as db:
            return db.execute(
                "SELECT name, status, worker, error, size_bytes FROM backups_backup "
                "WHERE name LIKE %s ORDER BY name",
                (like,),
            ).fetchall()

    def queue(self, names: list[str], namespaces: list[str] | None, wait: bool = True):
        """Start backups from a console process (it exits once they are queued)."""
        script = textwrap.dedent(f"""
            from backups.jobs import start_backup
            from locations.models import BackupLocation
            from workspaces.models import Cluster
            cluster, location = Cluster.objects.get(), BackupLocation.objects.get()
            for name in {names!r}:
                start_backup(cluster, location, name=name, include_namespaces={namespaces or []!r})
        """)  # fmt: skip
        process = subprocess.Popen(
            [sys.executable, "manage.py", "shell", "-c", script],
            cwd=REPO, env=self.env, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        if wait:
            assert process.wait(timeout=180) == 0
        return process

    def wait_final(self, like: str, count: int, timeout: float) -> list[tuple]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = self.rows(like)
            if len(rows) == count and all(r[1] not in ("pending", "running") for r in rows):
                return rows
            time.sleep(0.5)
        pytest.fail(f"{like}: not all final in {timeout} s: {self.rows(like)}")


def _empty_redis_db(url: str) -> tuple[str, redis.Redis]:
    """A Redis database no one uses, claimed with a marker key."""
    parts = urlsplit(url)
    for number in range(15, 0, -1):
        client = redis.Redis.from_url(urlunsplit(parts._replace(path=f"/{number}")))
        if client.dbsize() == 0 and client.set("palette-shape-test", "1", nx=True):
            return urlunsplit(parts._replace(path=f"/{number}")), client
        client.close()
    pytest.fail("no empty Redis database for the broker")


@pytest.fixture
def shape(devenv, tmp_path):
    server, redis_url = need(devenv, "POSTGRES_URL", "REDIS_URL")
    database = f"palette_shape_{secrets.token_hex(5)}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    dsn = urlunsplit(urlsplit(server)._replace(path=f"/{database}"))
    broker, broker_db = _empty_redis_db(redis_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="palette_site.settings",
        DATABASE_URL=dsn,
        CELERY_BROKER_URL=broker,
        DJANGO_SECRET_KEY=secrets.token_urlsafe(40),
        PALETTE_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        PALETTE_DATA_DIR=str(tmp_path / "data"),
        PALETTE_HEARTBEAT_TIMEOUT=str(HEARTBEAT_TIMEOUT),
        PALETTE_PENDING_TIMEOUT=str(PENDING_TIMEOUT),
        PALETTE_REAPER_SECONDS=str(REAPER_SECONDS),
        **policy_env(),
        PYTHONUNBUFFERED="1",
    )
    (tmp_path / "logs").mkdir()
    (tmp_path / "store").mkdir()
    result = Shape(env, database, dsn, tmp_path / "store", tmp_path / "logs")
    try:
        yield result
    finally:
        for name in list(result.groups):
            result.kill(name)
        broker_db.flushdb()
        broker_db.close()
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def test_two_workers_and_a_beat_share_the_work_and_survive_a_killed_worker(shape, devenv):
    (kubeconfig,) = need(devenv, "CLUSTER_A_KUBECONFIG")
    shape.manage("migrate", "--noinput")
    shape.manage("shell", script=f"""
        from pathlib import Path
        from locations.models import BackupLocation
        from workspaces.kube import flatten_kubeconfig
        from workspaces.models import Workspace
        from workspaces.registration import register_cluster
        ws = Workspace.objects.create(name="Shape")
        path = Path({kubeconfig!r})
        register_cluster(workspace=ws, name="cluster-a",
                         kubeconfig=flatten_kubeconfig(path.read_text(), path.parent))
        BackupLocation.objects.create(name="disk", workspace=ws, provider="filesystem",
                                      path={str(shape.store)!r}, is_default=True)
    """)  # fmt: skip
    # As README's "Running at scale" says: workers (named apart, on one machine) and one beat.
    shape.start("w1", "worker", "-n", "w1@%h", "--loglevel", "INFO")
    shape.start("w2", "worker", "-n", "w2@%h", "--loglevel", "INFO")
    shape.start("beat", "beat", "--schedule", str(shape.logs / "beat-schedule"))
    shape.wait_ready("w1", "w2")

    started = time.monotonic()
    shape.queue([f"batch-{n:02d}" for n in range(BATCH)], ["shop"])
    rows = shape.wait_final("batch-%", BATCH, timeout=300)
    took = time.monotonic() - started
    assert [r[1] for r in rows] == ["completed"] * BATCH, [r[3] for r in rows]
    nodes = {r[2].split("@")[0] for r in rows}
    assert nodes == {"w1", "w2"}, f"not spread over both workers: {nodes}"
    print(f"{BATCH} backups on 2 workers in {took:.1f} s")

    # A lost broker message: a pending row whose task never reached the broker is
    # queued again by the check once the pending timeout passed, and completes.
    shape.manage("shell", script="""
        from backups.models import Backup
        from workspaces.models import Cluster
        cluster = Cluster.objects.select_related("workspace").get()
        Backup.objects.create(
            name="lost-message", workspace=cluster.workspace, cluster=cluster,
            cluster_name=cluster.name, location=cluster.workspace.locations.get(),
            include_namespaces=["shop"],
        )
    """)  # fmt: skip
    lost_at = time.monotonic()
    (lost,) = shape.wait_final("lost-message", 1, timeout=PENDING_TIMEOUT + 60)
    with psycopg.connect(shape.dsn) as db:
        (requeued,) = db.execute(
            "SELECT requeued_at FROM backups_backup WHERE name = 'lost-message'"
        ).fetchone()
    assert lost[1] == "completed" and requeued is not None, lost
    print(f"a lost message was queued again and completed in {time.monotonic() - lost_at:.1f} s")

    # SIGKILL the worker that runs a (whole-cluster) backup, mid-backup.
    victim = killed_at = None
    for attempt in range(5):
        name = f"kill-{attempt}"
        queueing = shape.queue([name], None, wait=False)  # watch while it is queued
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            (row,) = shape.rows(name) or [(name, "pending", "", "", None)]
            if row[1] == "running":
                victim = row[2].split("@")[0]
                shape.kill(victim)
                killed_at = time.monotonic()
                break
            if row[1] not in ("pending", "running"):
                break  # it finished before we could kill it: try again
            time.sleep(0.02)
        assert queueing.wait(timeout=60) == 0
        if victim:
            break
    assert victim, "no backup was caught running"
    (row,) = shape.wait_final(name, 1, timeout=HEARTBEAT_TIMEOUT + 6 * REAPER_SECONDS + 30)
    reaped_after = time.monotonic() - killed_at
    assert row[1] == "failed" and "stopped reporting progress" in row[3], row
    assert reaped_after <= HEARTBEAT_TIMEOUT + 2 * REAPER_SECONDS + 5, reaped_after
    print(f"killed {victim}'s backup failed {reaped_after:.1f} s after SIGKILL")

    # The other worker goes on; no Completed backup lacks its archive.
    shape.queue(["after-kill"], ["shop"])
    (after,) = shape.wait_final("after-kill", 1, timeout=120)
    assert after[1] == "completed" and not after[2].startswith(victim)
    for name, status, _, _, size in shape.rows("%"):
        if status == "completed":
            archive = shape.store / "backups" / name / f"{name}.tar.gz"
            assert archive.is_file() and archive.stat().st_size == size, name
