"""Settings of the integrations: notifications, /metrics, single sign-on (README
"Notifications", "Metrics", "Single sign-on") and the REST API. ``settings.py`` takes
them all, and adds the beat entries, the apps and the login backend of its own lists."""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

from palette_site.env import env_bool, env_int, env_list, env_str

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
PALETTE_NOTIFY_FROM = env_str("PALETTE_NOTIFY_FROM", "backup-console@localhost")
PALETTE_NOTIFY_ATTEMPTS = env_int("PALETTE_NOTIFY_ATTEMPTS", 5, minimum=1)
PALETTE_NOTIFY_RETRY_SECONDS = float(env_int("PALETTE_NOTIFY_RETRY_SECONDS", 30, minimum=0))
PALETTE_NOTIFY_RPO_GRACE = env_int("PALETTE_NOTIFY_RPO_GRACE", 30, minimum=0)  # minutes
_BEAT_SCHEDULE = {
    "notify-send-due": {"task": "notifications.tasks.send_due", "schedule": 30.0},
    "notify-check-alarms": {"task": "notifications.tasks.check_alarms", "schedule": 60.0},
}
# /metrics answers a bearer token, or addresses in the allow-list (CIDRs); 404 with neither.
PALETTE_METRICS_TOKEN = env_str("PALETTE_METRICS_TOKEN", "")
PALETTE_METRICS_ALLOW = env_list("PALETTE_METRICS_ALLOW", [])
# Single sign-on: OpenID Connect (mozilla-django-oidc), off unless PALETTE_OIDC_ISSUER is
# set. The endpoints are those of the provider's /.well-known/openid-configuration.
PALETTE_OIDC_ISSUER = env_str("PALETTE_OIDC_ISSUER", "").rstrip("/")
PALETTE_OIDC_ENABLED = bool(PALETTE_OIDC_ISSUER)
OIDC_RP_CLIENT_ID = env_str("PALETTE_OIDC_CLIENT_ID", "")
OIDC_RP_CLIENT_SECRET = env_str("PALETTE_OIDC_CLIENT_SECRET", "")
OIDC_OP_AUTHORIZATION_ENDPOINT = env_str("PALETTE_OIDC_AUTHORIZATION_ENDPOINT", "")
OIDC_OP_TOKEN_ENDPOINT = env_str("PALETTE_OIDC_TOKEN_ENDPOINT", "")
OIDC_OP_USER_ENDPOINT = env_str("PALETTE_OIDC_USERINFO_ENDPOINT", "")
OIDC_OP_JWKS_ENDPOINT = env_str("PALETTE_OIDC_JWKS_ENDPOINT", "")
OIDC_RP_SCOPES = env_str("PALETTE_OIDC_SCOPES", "openid email profile groups")
OIDC_RP_SIGN_ALGO = "RS256"
OIDC_USE_PKCE = True
OIDC_CREATE_USER = True
OIDC_VERIFY_SSL = env_bool("PALETTE_OIDC_VERIFY_TLS", True)
LOGIN_REDIRECT_URL_FAILURE = "/accounts/login/?sso=failed"
# The claim that lists the user's groups, and "group=team" pairs: at every SSO login the
# user joins the mapped teams of the groups they have and leaves those of the others.
PALETTE_OIDC_GROUPS_CLAIM = env_str("PALETTE_OIDC_GROUPS_CLAIM", "groups")
PALETTE_OIDC_TEAMS = dict(
    pair.split("=", 1) for pair in env_list("PALETTE_OIDC_TEAMS", []) if "=" in pair
)
if PALETTE_OIDC_ENABLED:
    for _name in ("CLIENT_ID", "AUTHORIZATION_ENDPOINT", "TOKEN_ENDPOINT", "USERINFO_ENDPOINT",
                  "JWKS_ENDPOINT"):  # fmt: skip
        if not os.environ.get(f"PALETTE_OIDC_{_name}"):
            raise ImproperlyConfigured(f"PALETTE_OIDC_ISSUER is set: set PALETTE_OIDC_{_name} too")
# Local accounts stay (break-glass); the OIDC backend only answers its own callback.
_AUTHENTICATION_BACKENDS = ["sso.backend.TeamSyncBackend"]
# The REST API (api/): /api/v1/, its OpenAPI schema at /api/schema/ and the
# reference page at /api/docs/ (Swagger UI served from drf-spectacular-sidecar's
# static files: no CDN). Personal tokens as `Authorization: Bearer`; the
# session works too (with CSRF), for the reference page's "Try it out".
_INSTALLED_APPS = ["rest_framework", "django_filters", "drf_spectacular", "drf_spectacular_sidecar", "api"]  # fmt: skip
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.auth.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["api.auth.TokenScope"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.Pages",
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "api.search.Search",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "EXCEPTION_HANDLER": "api.forms.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Backup console API",
    "DESCRIPTION": "Backups, restores, schedules and etcd snapshots of Kubernetes clusters. "
    "Send a personal token (Account > API tokens) as `Authorization: Bearer <token>`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "backups.models.operation.Status",
        "LocationStatusEnum": "locations.models.BackupLocation.Status",
        "ClusterResourcesEnum": "backups.models.options.ClusterResources",
    },
}
