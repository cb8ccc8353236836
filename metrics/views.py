"""GET /metrics: Prometheus text, for a bearer token or an allowed address only.

With neither ``PALETTE_METRICS_TOKEN`` nor ``PALETTE_METRICS_ALLOW`` set the page
does not exist (404): metrics name every cluster and location.
"""

from __future__ import annotations

import hmac
import ipaddress
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .collector import ConsoleCollector


@lru_cache(maxsize=4)
def _networks(entries: tuple[str, ...]) -> tuple:
    try:
        return tuple(ipaddress.ip_network(e, strict=False) for e in entries)
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"PALETTE_METRICS_ALLOW lists CIDRs or addresses: {exc}"
        ) from None


def _address_allowed(request: HttpRequest) -> bool:
    networks = _networks(tuple(settings.PALETTE_METRICS_ALLOW))
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in net for net in networks)


def _token_ok(request: HttpRequest) -> bool:
    token = settings.PALETTE_METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    return bool(token) and hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not settings.PALETTE_METRICS_TOKEN and not settings.PALETTE_METRICS_ALLOW:
        raise Http404("Metrics are not enabled.")
    if not (_token_ok(request) or _address_allowed(request)):
        response = HttpResponse("A metrics token or an allowed address is needed.\n", status=401,
                                content_type="text/plain")  # fmt: skip
        if settings.PALETTE_METRICS_TOKEN:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ConsoleCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
