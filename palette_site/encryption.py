"""Encryption at rest for secrets (cloud keys, kubeconfigs, etcd client keys).

Values are Fernet tokens in the database; Python code sees plain text. The key
comes from PALETTE_ENCRYPTION_KEY (several comma-separated keys rotate: the
first encrypts, any decrypts). Nothing here logs or repeats a value, and a
token that no key opens raises an error that names the field, not the value.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

MASK = "••••••••"


@cache
def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key) for key in settings.ENCRYPTION_KEYS])


def encrypt(plain: str) -> str:
    return _fernet().encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    return _fernet().decrypt(token.encode()).decode()


def mask(value: str | None) -> str:
    """What a page may show of a secret: whether it is set, never any of it."""
    return MASK if value else "not set"


class EncryptedTextField(models.TextField):
    """A text column whose value is stored as a Fernet token.

    The empty string means "no secret" and is stored as is, so forms can tell
    "keep the stored value" from "set a new one".
    """

    description = "Text encrypted at rest"

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if not value:
            return value
        try:
            return decrypt(value)
        except InvalidToken:
            raise ImproperlyConfigured(
                f"Cannot decrypt {self.model.__name__}.{self.name}: PALETTE_ENCRYPTION_KEY "
                "does not hold the key it was encrypted with."
            ) from None

    def get_prep_value(self, value: Any) -> str | None:
        value = super().get_prep_value(value)
        if not value:
            return value
        return encrypt(value)

    def value_to_string(self, obj: models.Model) -> str:
        # Serialization (dumpdata) never writes secrets out in clear.
        return ""


class EncryptedJSONField(EncryptedTextField):
    """A dict of secrets (one provider's credentials), encrypted as one token."""

    description = "JSON encrypted at rest"

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> dict:
        plain = super().from_db_value(value, expression, connection)
        return json.loads(plain) if plain else {}

    def to_python(self, value: Any) -> dict:
        if isinstance(value, dict):
            return value
        return json.loads(value) if value else {}

    def get_prep_value(self, value: Any) -> str | None:
        if not value:
            return ""
        return encrypt(json.dumps(value, sort_keys=True))
