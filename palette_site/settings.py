"""Settings for the backup console, read from the environment (strictly: ``env.py``).

Every value has an embedded default that runs the whole console on one machine
(SQLite, a local Celery worker over a filesystem broker, files under ``var/``).
Production swaps pieces with environment variables; README.md lists them all.
The integrations' settings (notifications, metrics, SSO, the API) are in
``integrations.py``.
"""

from __future__ import annotations

import json
import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

# gRPC's C core (the etcd client) prints TLS failures to stderr itself; the
# console reports them as sentences instead.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

from palette_site.env import env_bool, env_int, env_list, env_str  # noqa: E402

DATA_DIR = Path(env_str("PALETTE_DATA_DIR", str(BASE_DIR / "var"))).resolve()


def _owner_only(path: Path) -> None:
    """Keys and the SQLite file hold secrets (or decrypt them): readable by the owner only."""
    if path.exists() and path.stat().st_mode & 0o077:
        path.chmod(0o600)


def _local_keys() -> dict[str, str]:
    """Keys for a single-machine install, made once and kept in DATA_DIR.

    A console with workers on other machines must set DJANGO_SECRET_KEY and
    PALETTE_ENCRYPTION_KEY in the environment instead, so all processes agree.
    """
    path = DATA_DIR / "keys.json"
    if path.exists():
        _owner_only(path)
        return json.loads(path.read_text())
    DATA_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    keys = {
        "secret_key": secrets.token_urlsafe(50),
        "encryption_key": Fernet.generate_key().decode(),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(keys, handle)
    return keys


DEBUG = env_bool("DJANGO_DEBUG", False)

if os.environ.get("DJANGO_SECRET_KEY") and os.environ.get("PALETTE_ENCRYPTION_KEY"):
    SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
    _encryption_keys = os.environ["PALETTE_ENCRYPTION_KEY"]
else:
    _local = _local_keys()
    SECRET_KEY = env_str("DJANGO_SECRET_KEY", _local["secret_key"])
    _encryption_keys = env_str("PALETTE_ENCRYPTION_KEY", _local["encryption_key"])

# Comma-separated Fernet keys: the first encrypts, all decrypt (key rotation).
ENCRYPTION_KEYS = [key.strip() for key in _encryption_keys.split(",") if key.strip()]
for _key in ENCRYPTION_KEYS:
    try:
        Fernet(_key)
    except (ValueError, TypeError):
        raise ImproperlyConfigured(
            "PALETTE_ENCRYPTION_KEY must be one or more comma-separated Fernet keys "
            "(make one with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')"
        ) from None

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "guardian",
    "django_htmx",
    "template_partials.apps.SimpleAppConfig",
    "axes",
    "csp",
    "workspaces",
    "locations",
    "backups",
    "notifications",
    "sso",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its refusal page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "palette_site.urls"
WSGI_APPLICATION = "palette_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",
            ],
            "loaders": [
                (
                    "template_partials.loader.Loader",
                    [
                        "django.template.loaders.filesystem.Loader",
                        "django.template.loaders.app_directories.Loader",
                    ],
                )
            ],
            "builtins": ["template_partials.templatetags.partials"],
        },
    }
]

_database_url = env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'console.sqlite3'}")
try:
    DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=60)}
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL I understand: {exc}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATA_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    _sqlite = Path(DATABASES["default"]["NAME"])
    if not _sqlite.exists() and str(_sqlite) != ":memory:":
        os.close(os.open(_sqlite, os.O_WRONLY | os.O_CREAT, 0o600))
    _owner_only(_sqlite)
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # The worker and the web process share the file: wait for locks instead of failing.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out username before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
# No guardian "AnonymousUser" row: anonymous visitors are sent to the login page.
ANONYMOUS_USER_NAME = None
GUARDIAN_MONKEY_PATCH_USER = False
GUARDIAN_MONKEY_PATCH_GROUP = False

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("PALETTE_TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "static"

# Sessions and cookies. The console is meant to be served over TLS (a proxy in front
# of it): cookies are Secure unless PALETTE_INSECURE_COOKIES=1 or DJANGO_DEBUG is on.
# Browsers also keep Secure cookies from http://localhost and http://127.0.0.1.
INSECURE_COOKIES = env_bool("PALETTE_INSECURE_COOKIES", DEBUG)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("PALETTE_SECURE_COOKIES", not INSECURE_COOKIES)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_SAMESITE = "Lax"
# Pages pass the CSRF token to htmx from the template, so no script needs the cookie.
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env_int("PALETTE_SESSION_HOURS", 12, minimum=1) * 3600
# Behind a TLS proxy that sets X-Forwarded-Proto (only then: a client could send it).
if env_bool("PALETTE_BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Sent on HTTPS responses only (SecurityMiddleware); 0 turns it off.
SECURE_HSTS_SECONDS = env_int("PALETTE_HSTS_SECONDS", 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = False
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp): the pages load only their own static files
# (htmx is vendored by django-htmx); no inline script, no inline style element.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Login throttling (django-axes): after PALETTE_LOGIN_FAILURE_LIMIT wrong passwords
# for one username, that username is refused (even with the right password) for
# PALETTE_LOGIN_LOCKOUT_MINUTES, or until staff delete its "access attempt" in the admin.
AXES_FAILURE_LIMIT = env_int("PALETTE_LOGIN_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("PALETTE_LOGIN_LOCKOUT_MINUTES", 30, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
AXES_USERNAME_CALLABLE = "palette_site.axes_support.username"
# axes.W006 asks to lock by client address too; behind a proxy every client has the
# proxy's address, so one attacker would lock everyone out. Usernames are locked.
SILENCED_SYSTEM_CHECKS = ["axes.W006"]

# Celery. The embedded default is a filesystem broker: a local worker needs no
# server. Set CELERY_BROKER_URL to redis://... or amqp://... to scale out.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = DATA_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
# The database row is the truth about a job; the result backend is never read.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BEAT_SCHEDULE: dict = {
    "fail-stale-operations": {
        "task": "backups.tasks.fail_stale_operations",
        "schedule": float(env_int("PALETTE_REAPER_SECONDS", 60, minimum=1)),
    },
    "revalidate-locations": {"task": "locations.tasks.revalidate_locations", "schedule": 3600.0},
    "tick-schedules": {"task": "backups.tasks.tick_schedules", "schedule": 60.0},
    "tick-etcd-policies": {"task": "backups.tasks.tick_etcd_policies", "schedule": 60.0},
    "expire-backups": {"task": "backups.tasks.expire_backups", "schedule": 3600.0},
    "sync-locations": {"task": "backups.tasks.sync_locations", "schedule": 1800.0},
}

# How long a running operation may go without a heartbeat before the periodic
# check declares its worker dead and marks it failed.
OPERATION_HEARTBEAT_TIMEOUT = env_int("PALETTE_HEARTBEAT_TIMEOUT", 120, minimum=10)
# How long a pending operation may wait for a worker to claim it before the same
# check queues it again (its broker message may be lost); after a second wait
# with no worker busy, it is marked failed.
OPERATION_PENDING_TIMEOUT = env_int("PALETTE_PENDING_TIMEOUT", 120, minimum=5)
# The AWS identity the console (its workers) runs as, shown in the trust policy
# that STS locations need, e.g. arn:aws:iam::111122223333:role/backup-console.
PALETTE_AWS_PRINCIPAL_ARN = env_str("PALETTE_AWS_PRINCIPAL_ARN", "")
# The shortest interval between two runs of one backup schedule or etcd policy.
MIN_SCHEDULE_INTERVAL = timedelta(minutes=env_int("PALETTE_MIN_SCHEDULE_INTERVAL", 60, minimum=1))
# Seconds to wait for a cluster's API server in a health check.
KUBE_TIMEOUT = env_int("PALETTE_KUBE_TIMEOUT", 10, minimum=1)
# A JSON file listing the control planes whose etcd the console may restore itself
# (``backups/engine/etcd/local.py`` describes it; devenv writes one). Empty: none.
PALETTE_ETCD_LOCAL_TARGETS = env_str("PALETTE_ETCD_LOCAL_TARGETS", "")

# Where filesystem locations may be: directories (os.pathsep- or comma-separated)
# under which a superuser may put a local location; nothing outside them is ever
# read, written or deleted.
PALETTE_FILESYSTEM_ROOTS = [
    item.strip()
    for item in env_str("PALETTE_FILESYSTEM_ROOTS", str(DATA_DIR / "backups"))
    .replace(os.pathsep, ",")
    .split(",")
    if item.strip()
]
for _root in PALETTE_FILESYSTEM_ROOTS:
    if not os.path.isabs(_root):
        raise ImproperlyConfigured(
            f"PALETTE_FILESYSTEM_ROOTS must list absolute directories; got {_root!r}"
        )
# An etcd endpoint must authenticate with a client certificate unless this is on
# (plain http:// or TLS without a client certificate, e.g. a local test etcd).
PALETTE_ETCD_ALLOW_PLAINTEXT = env_bool("PALETTE_ETCD_ALLOW_PLAINTEXT", False)
# Egress policy: CIDRs or host names that tenants' kubeconfig servers, store and
# etcd endpoints may reach although they are loopback, link-local, private or
# the cloud metadata address (refused otherwise). Comma-separated.
PALETTE_EGRESS_ALLOW = env_list("PALETTE_EGRESS_ALLOW", [])

LOG_LEVEL = env_str("PALETTE_LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(
        f"PALETTE_LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL; got {LOG_LEVEL!r}"
    )
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "kubernetes": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
        # The Azure SDK logs every request at INFO.
        "azure.core.pipeline.policies.http_logging_policy": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
    },
}

# Volume data ("Include all disks"; backups/engine/volumes/). The mover image needs sh, tar,
# tee, mkfifo, sha256sum and du (busybox has them); air-gapped clusters point this at a
# mirror. Timeouts in seconds. The sweep removes, every PALETTE_VOLUME_SWEEP_SECONDS, the
# temporary objects (label palette.io/operation) of jobs that ended without removing them.
PALETTE_MOVER_IMAGE = env_str("PALETTE_MOVER_IMAGE", "busybox:1.36")
PALETTE_SNAPSHOT_TIMEOUT = env_int("PALETTE_SNAPSHOT_TIMEOUT", 300, minimum=1)
PALETTE_MOVER_START_TIMEOUT = env_int("PALETTE_MOVER_START_TIMEOUT", 180, minimum=1)
PALETTE_MOVER_IDLE_TIMEOUT = env_int("PALETTE_MOVER_IDLE_TIMEOUT", 120, minimum=5)
PALETTE_RESTORE_WAIT_TIMEOUT = env_int("PALETTE_RESTORE_WAIT_TIMEOUT", 300, minimum=1)
CELERY_BEAT_SCHEDULE["sweep-volume-objects"] = {
    "task": "backups.tasks.sweep_volume_objects",
    "schedule": float(env_int("PALETTE_VOLUME_SWEEP_SECONDS", 600, minimum=10)),
}
# Integrations: notifications, /metrics, single sign-on, the REST API (integrations.py).
from palette_site import integrations as _integrations  # noqa: E402
from palette_site.integrations import *  # noqa: E402, F403

CELERY_BEAT_SCHEDULE |= _integrations._BEAT_SCHEDULE
AUTHENTICATION_BACKENDS = [*AUTHENTICATION_BACKENDS, *_integrations._AUTHENTICATION_BACKENDS]
INSTALLED_APPS += _integrations._INSTALLED_APPS
