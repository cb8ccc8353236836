"""Pieces the admin pages of every app share: write-only secrets."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from .encryption import mask


class SecretsAdminMixin:
    """Secret fields are never shown or edited in clear in the admin.

    Each secret gets a write-only input named ``new_<field>``: left blank, the
    stored value stays; filled in, it replaces it. The change page shows only
    whether a value is set.
    """

    secret_fields: tuple[str, ...] = ()
    json_secret_fields: tuple[str, ...] = ()

    def get_exclude(self, request, obj=None):
        return (*(super().get_exclude(request, obj) or ()), *self.secret_fields)

    def get_form(self, request, obj=None, change=False, **kwargs):
        fields = {}
        for name in self.secret_fields:
            help_text = "Write-only. Leave blank to keep the stored value."
            if name in self.json_secret_fields:
                help_text += " A JSON object."
            field_class = forms.JSONField if name in self.json_secret_fields else forms.CharField
            fields[f"new_{name}"] = field_class(
                required=False,
                label=f"Replace {name.replace('_', ' ')}",
                widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off"}),
                help_text=help_text,
            )
        kwargs["form"] = type(f"{self.model.__name__}SecretsForm", (self.form,), fields)
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "secrets_stored")

    @admin.display(description="Secrets stored")
    def secrets_stored(self, obj) -> str:
        return ", ".join(f"{name}: {mask(getattr(obj, name, ''))}" for name in self.secret_fields)

    def save_model(self, request, obj, form, change):
        for name in self.secret_fields:
            value = form.cleaned_data.get(f"new_{name}")
            if value:
                setattr(obj, name, value)
        super().save_model(request, obj, form, change)
