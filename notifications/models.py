"""Rules (who hears about what), deliveries (each message and its attempts) and
alarms (conditions found by the periodic check, announced once until they clear)."""

from __future__ import annotations

import secrets

from django.db import models

from palette_site.encryption import EncryptedTextField
from palette_site.model_fields import user_field


class Event(models.TextChoices):
    BACKUP_FAILED = "backup.failed", "Backup failed"
    BACKUP_PARTIALLY_FAILED = "backup.partially_failed", "Backup partially failed"
    BACKUP_SUCCEEDED = "backup.succeeded", "Backup succeeded"
    RESTORE_FAILED = "restore.failed", "Restore failed"
    RESTORE_PARTIALLY_FAILED = "restore.partially_failed", "Restore partially failed"
    RESTORE_SUCCEEDED = "restore.succeeded", "Restore succeeded"
    SNAPSHOT_FAILED = "etcd_snapshot.failed", "etcd snapshot failed"
    SNAPSHOT_PARTIALLY_FAILED = "etcd_snapshot.partially_failed", "etcd snapshot partially failed"
    SNAPSHOT_SUCCEEDED = "etcd_snapshot.succeeded", "etcd snapshot succeeded"
    LOCATION_UNAVAILABLE = "location.unavailable", "Location unavailable"
    RPO_MISSED = "schedule.missed_recovery_point", "Schedule missed its recovery point"


TEST_EVENT = "test"


def new_secret() -> str:
    return secrets.token_urlsafe(32)


class Rule(models.Model):
    """Send these events of one workspace to one destination."""

    class Channel(models.TextChoices):
        EMAIL = "email", "E-mail"
        WEBHOOK = "webhook", "Webhook (signed JSON)"
        SLACK = "slack", "Slack-compatible webhook"

    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.CASCADE, related_name="notification_rules"
    )
    name = models.CharField(max_length=100)
    events = models.JSONField(default=list, help_text="Event names (Event values)")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    recipients = models.TextField(blank=True, help_text="E-mail addresses, comma-separated")
    # A webhook URL often is the credential itself (Slack's are): encrypted, never shown back.
    url = EncryptedTextField(blank=True)
    url_host = models.CharField(max_length=253, blank=True, help_text="Shown instead of the URL")
    secret = EncryptedTextField(default=new_secret, help_text="HMAC-SHA256 key of the signature")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = user_field()

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="rule_unique_in_workspace")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def destination(self) -> str:
        """Where it goes, for pages: the addresses, or the webhook's host only."""
        return self.recipients if self.channel == self.Channel.EMAIL else self.url_host

    def event_labels(self) -> list[str]:
        labels = dict(Event.choices)
        return [labels.get(name, name) for name in self.events]


class Delivery(models.Model):
    """One message for one rule, and what happened at each attempt."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"  # queued, not tried yet
        SENDING = "sending", "Sending"  # claimed by a worker
        RETRYING = "retrying", "Retrying"  # failed, tried again at next_attempt_at
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"  # out of attempts, or refused for good

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=60)
    summary = models.CharField(max_length=500)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # One {"at", "code", "error"} per attempt: the log the page shows.
    attempt_log = models.JSONField(default=list)
    last_code = models.PositiveIntegerField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    claimed_at = models.DateTimeField(null=True, blank=True, help_text="Start of the attempt")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"{self.event} to {self.rule}"


class Alarm(models.Model):
    """A condition the periodic check found (a location down, a recovery point
    missed). Announced when it is raised; raised again only after it cleared."""

    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.CASCADE, related_name="notification_alarms"
    )
    event = models.CharField(max_length=60)
    key = models.CharField(max_length=100, help_text="What it is about, e.g. location:5")
    active = models.BooleanField(default=True)
    raised_at = models.DateTimeField()
    cleared_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "event", "key"], name="alarm_unique")
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.key}"
