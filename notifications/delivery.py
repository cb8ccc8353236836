"""Sending one delivery: one attempt at a time, retried with backoff.

Webhooks: a POST of the JSON document (or of a Slack ``{"text": ...}`` body), with

    X-Palette-Event: backup.failed
    X-Palette-Delivery: <delivery id>
    X-Palette-Timestamp: <unix seconds>
    X-Palette-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the rule's secret>

A 2xx answer delivers it. Anything else (another code, a timeout, a refused
connection) is retried after ``PALETTE_NOTIFY_RETRY_SECONDS`` × 2^(attempt-1), up
to ``PALETTE_NOTIFY_ATTEMPTS`` attempts. Redirects are never followed (a 3xx is a
failed attempt), and the egress policy is applied to the address actually dialled,
so a name that resolves elsewhere after the rule was saved is still refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import timedelta

import urllib3
from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

from palette_site import egress

from .models import Delivery, Rule

TIMEOUT = urllib3.Timeout(connect=5.0, read=10.0)


class Permanent(Exception):
    """An attempt that no retry can fix (the address is refused by the policy)."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def backoff(attempts: int) -> float:
    """Seconds before the next attempt, after ``attempts`` failed ones."""
    return settings.PALETTE_NOTIFY_RETRY_SECONDS * 2 ** max(attempts - 1, 0)


def claim(pk: int) -> Delivery | None:
    """Take a due delivery for this attempt; None when another worker has it or it is over."""
    due = Delivery.objects.filter(
        pk=pk, status__in=[Delivery.Status.PENDING, Delivery.Status.RETRYING]
    )
    now = timezone.now()
    # A countdown task may arrive a moment early: a second of slack.
    due = due.exclude(next_attempt_at__gt=now + timedelta(seconds=1))
    if not due.update(status=Delivery.Status.SENDING, claimed_at=now):
        return None
    return Delivery.objects.select_related("rule__workspace").get(pk=pk)


def attempt(delivery: Delivery) -> float | None:
    """One attempt at a claimed delivery; the seconds until the next one, or None."""
    code, error, final = None, "", False
    try:
        code = _send(delivery)
        ok = code is None or 200 <= code < 300
        if not ok:
            error = "redirects are not followed" if 300 <= code < 400 else f"answered HTTP {code}"
    except Permanent as exc:
        ok, error, final = False, str(exc), True
    except Exception as exc:  # every transport error is one failed attempt, said plainly
        ok, error = False, _plain(exc)
    now = timezone.now()
    delivery.attempts += 1
    delivery.last_code = code
    delivery.attempt_log = [
        *delivery.attempt_log,
        {"at": now.isoformat(), "code": code, "error": error},
    ]
    wait = None
    if ok:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = (
            Delivery.Status.DELIVERED, now, None)  # fmt: skip
    elif final or delivery.attempts >= settings.PALETTE_NOTIFY_ATTEMPTS:
        delivery.status, delivery.next_attempt_at = Delivery.Status.FAILED, None
    else:
        wait = backoff(delivery.attempts)
        delivery.status = Delivery.Status.RETRYING
        delivery.next_attempt_at = now + timedelta(seconds=wait)
    delivery.save(update_fields=["attempts", "last_code", "attempt_log", "status",
                                 "delivered_at", "next_attempt_at"])  # fmt: skip
    return wait


def _plain(exc: Exception) -> str:
    """A transport error as a sentence without the URL (it may hold a token)."""
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    if isinstance(exc, urllib3.exceptions.NewConnectionError | ConnectionError):
        return "the receiver refused the connection or could not be reached"
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return "the receiver did not answer in time"
    if isinstance(exc, urllib3.exceptions.SSLError):
        return "the receiver's TLS certificate was not accepted"
    return f"the message could not be sent ({exc.__class__.__name__})"


def _send(delivery: Delivery) -> int | None:
    rule = delivery.rule
    if rule.channel == Rule.Channel.EMAIL:
        _email(rule, delivery)
        return None
    if rule.channel == Rule.Channel.SLACK:
        body = json.dumps({"text": delivery.summary}).encode()
    else:
        body = json.dumps(delivery.payload, sort_keys=True).encode()
    return post(rule, body, delivery.event, str(delivery.pk))


def post(rule: Rule, body: bytes, event: str, delivery_id: str) -> int:
    """POST ``body`` to the rule's URL under the egress policy; the HTTP status."""
    try:
        egress.check_url(rule.url, what="webhook address")
    except egress.EgressDenied as exc:
        raise Permanent(str(exc)) from None
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "palette-backup-console",
        "X-Palette-Event": event,
        "X-Palette-Delivery": delivery_id,
        "X-Palette-Timestamp": timestamp,
        "X-Palette-Signature": sign(rule.secret, timestamp, body),
    }
    pool = egress.guard(urllib3.PoolManager(timeout=TIMEOUT, retries=False), "webhook address")
    try:
        response = pool.request(
            "POST", rule.url, body=body, headers=headers, redirect=False, retries=False,
            preload_content=False,
        )  # fmt: skip
        response.read(64 * 1024, decode_content=False)  # a bounded read: the code is what counts
        response.release_conn()
        return response.status
    except egress.EgressDenied as exc:
        raise Permanent(str(exc)) from None
    finally:
        pool.clear()


def _email(rule: Rule, delivery: Delivery) -> None:
    recipients = [address.strip() for address in rule.recipients.split(",") if address.strip()]
    body = f"{delivery.summary}\n\n{json.dumps(delivery.payload, indent=2, sort_keys=True)}\n"
    send_mail(
        f"[Backup console] {delivery.summary[:150]}",
        body,
        settings.PALETTE_NOTIFY_FROM,
        recipients,
        fail_silently=False,
    )
