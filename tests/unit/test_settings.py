"""Settings are read from the environment strictly: a bad value stops start-up
with a message that names the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


DEFAULT_PRINT = "s.DEBUG, s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL"


def load_settings(tmp_path, expr: str = DEFAULT_PRINT, **env) -> subprocess.CompletedProcess:
    """Import the settings in a fresh interpreter with only ``env`` set; print ``expr``."""
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PALETTE_", "DATABASE"))
    }
    environ.update({"PALETTE_DATA_DIR": str(tmp_path)}, **env)
    code = f"import palette_site.settings as s; print({expr})"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environ, capture_output=True, text=True
    )


def test_it_runs_with_embedded_defaults(tmp_path):
    result = load_settings(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "django.db.backends.sqlite3", "filesystem://"]
    # Local keys are made once, private to the owner.
    assert (tmp_path / "keys.json").stat().st_mode & 0o077 == 0


def test_it_switches_to_postgresql_and_redis(tmp_path):
    result = load_settings(
        tmp_path,
        DATABASE_URL="postgres://u:p@db.example:5432/console",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[1:] == [
        "django.db.backends.postgresql",
        "redis://127.0.0.1:6379/0",
    ]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DJANGO_DEBUG", "maybe"),
        ("PALETTE_HEARTBEAT_TIMEOUT", "soon"),
        ("PALETTE_HEARTBEAT_TIMEOUT", "3"),
        ("PALETTE_LOG_LEVEL", "LOUD"),
        ("DATABASE_URL", "nosuchdb://x"),
    ],
)
def test_it_refuses_a_bad_value_naming_the_variable(tmp_path, variable, value):
    result = load_settings(tmp_path, **{variable: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert variable in result.stderr


def test_it_refuses_a_bad_encryption_key(tmp_path):
    result = load_settings(
        tmp_path, DJANGO_SECRET_KEY="x" * 50, PALETTE_ENCRYPTION_KEY="not-a-fernet-key"
    )
    assert result.returncode != 0
    assert "PALETTE_ENCRYPTION_KEY" in result.stderr
    assert "not-a-fernet-key" not in result.stderr


def _values(tmp_path, expr: str, **env) -> str:
    result = load_settings(tmp_path, expr, **env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


SESSION = (
    "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_AGE, s.SECURE_HSTS_SECONDS"
)


def test_cookies_are_secure_and_sessions_short_by_default(tmp_path):
    assert _values(tmp_path, SESSION) == "True True 43200 31536000"


@pytest.mark.parametrize("env", [{"PALETTE_INSECURE_COOKIES": "1"}, {"DJANGO_DEBUG": "1"}])
def test_plain_http_installs_turn_secure_cookies_off(tmp_path, env):
    assert _values(tmp_path, SESSION, **env).startswith("False False")


def test_the_sqlite_file_and_the_keys_are_private(tmp_path):
    _values(tmp_path, "1")
    (tmp_path / "keys.json").chmod(0o644)
    (tmp_path / "console.sqlite3").chmod(0o644)
    _values(tmp_path, "1")
    for name in ("keys.json", "console.sqlite3"):
        assert (tmp_path / name).stat().st_mode & 0o077 == 0, name


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PALETTE_SESSION_HOURS", "0"),
        ("PALETTE_LOGIN_FAILURE_LIMIT", "many"),
        ("PALETTE_MIN_SCHEDULE_INTERVAL", "0"),
        ("PALETTE_INSECURE_COOKIES", "perhaps"),
    ],
)
def test_security_settings_refuse_bad_values(tmp_path, variable, value):
    result = load_settings(tmp_path, **{variable: value})
    assert result.returncode != 0
    assert variable in result.stderr
