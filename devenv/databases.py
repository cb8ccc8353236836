"""A private PostgreSQL instance and a private Redis, from Debian's packages when installed.

Both run from ``.devenv/`` on their own ports, so they never touch a system instance.
PostgreSQL refuses to run as root: when we are root, initdb and postgres run as the
``postgres`` user (``runuser -u postgres --``) on a data directory owned by it.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
from pathlib import Path

from . import config, procs

H = config.HOST
INSTALL_HINT = "apt-get install -y postgresql redis-server"


class Unavailable(RuntimeError):
    pass


# --- PostgreSQL ----------------------------------------------------------------------------


def postgres_bin_dir() -> Path | None:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    return Path(found[-1]).parent if found else None


def _pg_dir() -> Path:
    return config.STATE_DIR / "postgres"


def _as_postgres(argv: list[str]) -> list[str]:
    """Run as the postgres user when we are root (postgres refuses root)."""
    if os.geteuid() != 0:
        return argv
    runuser = shutil.which("runuser") or next(
        (p for p in ("/usr/sbin/runuser", "/sbin/runuser") if Path(p).exists()), "runuser"
    )
    return [runuser, "-u", "postgres", "--", *argv]


def _chown_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(path, pw.pw_uid, pw.pw_gid)


def _provide_postgres(log) -> None:
    bindir = postgres_bin_dir()
    if bindir is None:
        raise Unavailable(f"PostgreSQL is not installed ({INSTALL_HINT})")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError as err:
            raise Unavailable("running as root needs the 'postgres' user to run postgres") from err
    root = _pg_dir()
    data = root / "data"
    if (data / "PG_VERSION").exists():
        return
    root.mkdir(parents=True, exist_ok=True)
    for d in (root, root / "run"):
        d.mkdir(exist_ok=True)
        _chown_postgres(d)
    pwfile = root / "pwfile"
    pwfile.write_text(config.POSTGRES_PASSWORD + "\n")
    _chown_postgres(pwfile)
    log("initialising the private PostgreSQL data directory ...")
    proc = subprocess.run(
        _as_postgres(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                config.POSTGRES_USER,
                f"--pwfile={pwfile}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
            ]
        ),
        capture_output=True,
        text=True,
        check=False,
    )
    pwfile.unlink(missing_ok=True)
    if proc.returncode != 0:
        shutil.rmtree(data, ignore_errors=True)
        raise RuntimeError(f"initdb failed:\n{proc.stderr.strip()}")


def _pg_ready() -> bool:
    bindir = postgres_bin_dir()
    if bindir is None or not procs.tcp_open(config.PORTS["postgres"]):
        return False
    proc = subprocess.run(
        [str(bindir / "pg_isready"), "-q", "-h", H, "-p", str(config.PORTS["postgres"])],
        capture_output=True,
        check=False,
    )
    return proc.returncode == 0


def _ensure_database(log) -> None:
    """Create the tests' database once (the superuser role was made by initdb)."""
    bindir = postgres_bin_dir()
    base = [
        str(bindir / "psql"),
        "-h",
        str(_pg_dir() / "run"),
        "-p",
        str(config.PORTS["postgres"]),
        "-U",
        config.POSTGRES_USER,
        "-d",
        "postgres",
        "-tAc",
    ]
    exists = subprocess.run(
        # The name is a constant of devenv/config.py, not user input.
        _as_postgres([*base, f"SELECT 1 FROM pg_database WHERE datname='{config.POSTGRES_DB}'"]),  # noqa: S608
        capture_output=True,
        text=True,
        check=True,
    )
    if exists.stdout.strip() != "1":
        subprocess.run(
            _as_postgres([*base, f'CREATE DATABASE "{config.POSTGRES_DB}"']),
            capture_output=True,
            check=True,
        )
        log(f"created database {config.POSTGRES_DB}")


def _postgres_service() -> procs.Service:
    bindir = postgres_bin_dir()
    port = config.PORTS["postgres"]
    root = _pg_dir()
    argv = _as_postgres(
        [
            str(bindir / "postgres"),
            "-D",
            str(root / "data"),
            "-p",
            str(port),
            "-k",
            str(root / "run"),
            "-c",
            f"listen_addresses={H}",
            # A throwaway test database: durability is not worth the time.
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=200",
        ]
    )
    # SIGINT is postgres' "fast" shutdown; runuser passes it on.
    return procs.Service("postgres", argv, port, _pg_ready, stop_signal=signal.SIGINT)


def _postgres_env() -> dict[str, str]:
    port = config.PORTS["postgres"]
    return {
        "POSTGRES_URL": (
            f"postgres://{config.POSTGRES_USER}:{config.POSTGRES_PASSWORD}@{H}:{port}/"
            f"{config.POSTGRES_DB}"
        )
    }


# --- Redis ---------------------------------------------------------------------------------


def _redis_server() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )


def _provide_redis(log) -> None:
    if _redis_server() is None:
        raise Unavailable(f"redis-server is not installed ({INSTALL_HINT})")


def _redis_service() -> procs.Service:
    port = config.PORTS["redis"]
    data = config.STATE_DIR / "redis"
    data.mkdir(parents=True, exist_ok=True)
    argv = [
        _redis_server(),
        "--bind",
        H,
        "--port",
        str(port),
        "--dir",
        str(data),
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
    ]

    def ready() -> bool:
        import socket

        try:
            with socket.create_connection((H, port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    return procs.Service("redis", argv, port, ready)


def _redis_env() -> dict[str, str]:
    return {"REDIS_URL": f"redis://{H}:{config.PORTS['redis']}/0"}


def start_postgres(log) -> str:
    _provide_postgres(log)
    state = procs.ensure(_postgres_service(), log=log)
    _ensure_database(log)
    return state


def start_redis(log) -> str:
    _provide_redis(log)
    return procs.ensure(_redis_service(), log=log)


# name -> (start, env)
DATABASES = {
    "postgres": (start_postgres, _postgres_env),
    "redis": (start_redis, _redis_env),
}
