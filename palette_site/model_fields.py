"""Model fields several apps declare alike."""

from django.conf import settings
from django.db import models


def user_field() -> models.ForeignKey:
    """Who made the row (or acted); the row outlives the account (SET NULL)."""
    return models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
