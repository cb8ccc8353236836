"""The location form: fields follow the provider, secrets are never rendered back.

One form class serves every provider: it keeps only the fields the chosen
provider (and credential mode) needs, so the page can swap them with HTMX when
the provider changes and a plain form post still works without JavaScript.
"""

from __future__ import annotations

import json
import re

from django import forms
from django.core import signing
from django.core.exceptions import ValidationError
from django.urls import reverse

from workspaces.access import workspaces_for
from workspaces.roles import Action

from . import protection
from .models import BackupLocation
from .placement import refuse_unless_allowed

P = BackupLocation.Provider

# A new location's external ID is generated on the server and shown before the
# location exists (it goes into the role's trust policy first). It travels
# between the page's requests only signed, so a client can never choose one.
EXTERNAL_ID_SALT = "locations.external-id"
EXTERNAL_ID_MAX_AGE = 7 * 24 * 3600


def sign_external_id(external_id: str) -> str:
    return signing.dumps(external_id, salt=EXTERNAL_ID_SALT)


def signed_external_id(token: str) -> str | None:
    """The external ID the console signed into ``token``, or None."""
    try:
        value = signing.loads(token or "", salt=EXTERNAL_ID_SALT, max_age=EXTERNAL_ID_MAX_AGE)
    except signing.BadSignature:
        return None
    return (
        value if isinstance(value, str) and re.fullmatch(r"palette-[0-9a-f]{24}", value) else None
    )


# Values of the credentials dict that are secrets: never shown again; a blank
# field on edit keeps the stored value.
SECRET_KEYS = (
    "secret_key",
    "service_account_json",
    "account_key",
    "connection_string",
    "client_secret",
)
# Values of the credentials dict that are identifiers, shown back on edit.
PUBLIC_KEYS = ("access_key", "account_name", "tenant_id", "client_id")
CREDENTIAL_KEYS = PUBLIC_KEYS + SECRET_KEYS

AZURE_AUTH = {
    "key": ("account_name", "account_key"),
    "connection_string": ("connection_string",),
    "service_principal": ("account_name", "tenant_id", "client_id", "client_secret"),
}

STORE = ("bucket", "prefix", "endpoint_url", "ca_bundle")


def endpoint_problem(url: str) -> str | None:
    """Why ``url`` cannot be a store's endpoint (an http(s) URL with a host and a port
    in range), or None. Checked before it is saved, by the page and the command."""
    from urllib.parse import urlsplit

    if not url:
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises for a port out of range)
    except ValueError as exc:
        return f"Not a URL ({exc})."
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "Give an http:// or https:// URL with a host, e.g. https://minio.example:9000."
    if not url.isprintable() or " " in url:
        return "Use a URL without spaces or control characters."
    return None


def fields_for(provider: str, credential_mode: str, azure_auth: str) -> list[str]:
    """The form fields a provider needs, in display order."""
    return [
        *_store_fields(provider, credential_mode, azure_auth),
        *protection.form_fields(provider),
    ]


def _store_fields(provider: str, credential_mode: str, azure_auth: str) -> list[str]:
    if provider == P.FILESYSTEM:
        return ["path"]
    if provider == P.S3:
        creds = ["credential_mode", "access_key", "secret_key"]
        if credential_mode == BackupLocation.CredentialMode.STS:
            creds += ["role_arn", "external_id"]
        return [*STORE[:2], "region", *STORE[2:], "force_path_style", *creds]
    if provider == P.MINIO:
        return [*STORE[:2], "region", *STORE[2:], "force_path_style", "access_key", "secret_key"]
    if provider == P.GCS:
        return [*STORE, "service_account_json"]
    if provider == P.AZURE:
        return [*STORE, "azure_auth", *AZURE_AUTH.get(azure_auth, AZURE_AUTH["key"])]
    return []


def azure_auth_of(credentials: dict) -> str:
    if credentials.get("connection_string"):
        return "connection_string"
    if credentials.get("client_secret"):
        return "service_principal"
    return "key"


def secret_input(label: str, help_text: str = "", textarea: bool = False) -> forms.CharField:
    widget = (
        forms.Textarea(attrs={"rows": 4, "autocomplete": "off", "spellcheck": "false"})
        if textarea
        else forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})
    )
    return forms.CharField(label=label, required=False, widget=widget, help_text=help_text)


class LocationForm(forms.ModelForm):
    access_key = forms.CharField(required=False, label="Access key ID")
    secret_key = secret_input("Secret access key")
    azure_auth = forms.ChoiceField(
        label="Authenticate with",
        choices=[
            ("key", "Account name and key"),
            ("connection_string", "Connection string"),
            ("service_principal", "Service principal (tenant, client id, secret)"),
        ],
        required=False,
    )
    account_name = forms.CharField(required=False, label="Storage account name")
    account_key = secret_input("Account key")
    connection_string = secret_input("Connection string", textarea=True)
    tenant_id = forms.CharField(required=False, label="Tenant ID")
    client_id = forms.CharField(required=False, label="Client ID")
    client_secret = secret_input("Client secret")
    service_account_json = secret_input(
        "Service-account key (JSON)",
        "The JSON key file of a service account with Storage Object Admin on the bucket.",
        textarea=True,
    )
    external_id_token = forms.CharField(required=False, widget=forms.HiddenInput)
    save_unavailable = forms.BooleanField(
        required=False,
        label="Save it anyway, marked Unavailable",
        help_text="Nothing will be written to it until it validates.",
    )

    class Meta:
        model = BackupLocation
        fields = [
            "name",
            "workspace",
            "is_default",
            "provider",
            "bucket",
            "prefix",
            "region",
            "endpoint_url",
            "force_path_style",
            "ca_bundle",
            "path",
            "credential_mode",
            "role_arn",
            "external_id",
            "encrypt",
            "kms_key_id",
            "object_lock_mode",
            "object_lock_days",
        ]
        labels = {
            "encrypt": "Encrypt every object (client-side)",
            "kms_key_id": "AWS KMS key (optional)",
            "object_lock_mode": "Object lock",
            "object_lock_days": "Retention (days)",
            "bucket": "Bucket or container",
            "endpoint_url": "Endpoint URL",
            "force_path_style": "Force path-style addressing (required for MinIO)",
            "ca_bundle": "Custom CA bundle (PEM)",
            "path": "Directory",
            "role_arn": "Role ARN",
            "external_id": "External ID",
            "is_default": "Default location of the workspace",
        }
        help_texts = {
            "prefix": "Optional folder inside the bucket, e.g. velero/prod",
            "endpoint_url": "Leave empty for AWS, Google or Azure; e.g. http://minio.local:9000",
            "ca_bundle": "Paste the PEM certificates to trust when the store uses a private CA.",
            "path": "An absolute path on the machines that run the workers.",
            "external_id": "Generated by the console; put it in the role's trust policy.",
        }
        widgets = {
            "ca_bundle": forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
            "external_id": forms.TextInput(attrs={"readonly": True}),
        }

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        instance = self.instance
        data = self.data if self.is_bound else {}
        credentials = instance.credentials or {}
        self.user = user
        if not instance.pk:
            # A new location's external ID was shown on the page (and may already be
            # in the role's trust policy): keep it across swaps and posts, but only
            # the one the console signed, never a value the client typed.
            token = data.get("external_id_token") or self.initial.get("external_id_token")
            instance.external_id = signed_external_id(token) or instance.external_id
            self.initial["external_id"] = instance.external_id
            self.initial["external_id_token"] = sign_external_id(instance.external_id)
        self.provider = data.get("provider") or self.initial.get("provider") or instance.provider
        self.provider = self.provider if self.provider in P.values else P.S3
        self.credential_mode = (
            data.get("credential_mode")
            or self.initial.get("credential_mode")
            or instance.credential_mode
        )
        self.azure_auth = data.get("azure_auth") or self.initial.get(
            "azure_auth", azure_auth_of(credentials)
        )
        wanted = {"name", "workspace", "is_default", "provider", "save_unavailable"}
        if not instance.pk:
            wanted.add("external_id_token")
        wanted |= set(fields_for(self.provider, self.credential_mode, self.azure_auth))
        for name in list(self.fields):
            if name not in wanted:
                del self.fields[name]
        if "credential_mode" in self.fields:
            self.fields["credential_mode"].choices = [
                c for c in BackupLocation.CredentialMode.choices if c[0] != "none"
            ]
        # Changing one of these re-renders the provider's fields (HTMX), sending the
        # form's values but never its secrets.
        fields_url = reverse("location_fields") + (f"?pk={instance.pk}" if instance.pk else "")
        for name in ("provider", "credential_mode", "azure_auth"):
            if name in self.fields:
                self.fields[name].widget.attrs.update(
                    {
                        "hx-get": fields_url,
                        "hx-trigger": "change",
                        "hx-target": "#provider-fields",
                        "hx-swap": "outerHTML",
                        "hx-include": "closest form",
                        "hx-params": "not " + ",".join((*SECRET_KEYS, "csrfmiddlewaretoken")),
                    }
                )
        for key in PUBLIC_KEYS:
            if key in self.fields and key in credentials:
                self.initial.setdefault(key, credentials[key])
        if "azure_auth" in self.fields:
            self.initial.setdefault("azure_auth", self.azure_auth)
        for key in SECRET_KEYS:
            if key in self.fields and credentials.get(key):
                self.fields[key].help_text = "A value is stored. Leave blank to keep it."
        if "provider" in self.fields and not (user and user.is_superuser):
            # Offered to superusers only; a post of it is refused in clean() by name.
            self.fields["provider"].widget.choices = [
                choice for choice in self.fields["provider"].choices if choice[0] != P.FILESYSTEM
            ]
        if "workspace" in self.fields and user is not None:
            self.fields["workspace"].queryset = workspaces_for(user, Action.MANAGE)
            self.fields["workspace"].required = not user.is_superuser
            self.fields["workspace"].empty_label = (
                "(none: only explicit grants)" if user.is_superuser else None
            )
        if self.provider == P.MINIO and not self.is_bound:
            self.initial["force_path_style"] = True  # MinIO needs it
        protection.adjust_form(self)

    COMMON = ("name", "workspace", "is_default", "provider")

    @property
    def common_fields(self) -> list:
        return [self[name] for name in self.COMMON if name in self.fields]

    @property
    def provider_fields(self) -> list:
        skip = (*self.COMMON, "save_unavailable", "external_id_token")
        return [self[name] for name in self.fields if name not in skip]

    @property
    def provider_value(self) -> str:
        return self.provider

    @property
    def provider_label(self) -> str:
        return P(self.provider).label

    @property
    def credential_mode_value(self) -> str:
        return self.credential_mode

    def clean_endpoint_url(self) -> str:
        url = self.cleaned_data["endpoint_url"].strip()
        if problem := endpoint_problem(url):
            raise forms.ValidationError(problem)
        return url

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", name):
            raise forms.ValidationError("Use letters, digits, dots, dashes and underscores.")
        return name

    def _get_validation_exclusions(self) -> set[str]:
        """ "One default per workspace" is not checked here: saving a new default
        takes the flag from the old one in the same transaction (lifecycle.py)."""
        return super()._get_validation_exclusions() | {"is_default"}

    def clean_external_id(self) -> str:
        """Generated by the console, never chosen by the user (see __init__)."""
        return self.instance.external_id

    def clean_service_account_json(self) -> str:
        text = self.cleaned_data.get("service_account_json", "").strip()
        if text:
            try:
                parsed = json.loads(text)
            except ValueError:
                raise forms.ValidationError("This is not valid JSON.") from None
            if not isinstance(parsed, dict) or "client_email" not in parsed:
                raise forms.ValidationError("This is not a service-account key (no client_email).")
        return text

    def clean(self) -> dict:
        data = super().clean()
        provider = data.get("provider")
        try:
            refuse_unless_allowed(self.user, BackupLocation(pk=self.instance.pk, provider=provider))
        except ValidationError as exc:
            self.add_error("provider" if "provider" in self.fields else None, exc)
        if provider == P.FILESYSTEM:
            if not data.get("path", "").startswith("/"):
                self.add_error("path", "Give an absolute path.")
        elif provider and not data.get("bucket"):
            self.add_error("bucket", "Give the bucket (or container) name.")
        if data.get("prefix"):
            data["prefix"] = data["prefix"].strip("/")
        self.instance.credentials = self._credentials(data)
        if provider == P.FILESYSTEM:
            self.instance.credential_mode = BackupLocation.CredentialMode.NONE
        elif provider != P.S3:
            self.instance.credential_mode = BackupLocation.CredentialMode.STATIC
        self._require_credentials(data)
        return data

    def _credentials(self, data: dict) -> dict:
        """The new credentials dict: the submitted values for this provider's
        fields, stored secrets kept where the field was left blank."""
        stored = self.instance.credentials or {}
        credentials = {}
        for key in CREDENTIAL_KEYS:
            if key not in self.fields:
                continue
            value = (data.get(key) or "").strip()
            if value:
                credentials[key] = value
            elif key in SECRET_KEYS and stored.get(key):
                credentials[key] = stored[key]
        return credentials

    def _require_credentials(self, data: dict) -> None:
        creds = self.instance.credentials
        provider = data.get("provider")
        if provider == P.MINIO or (
            provider == P.S3 and data.get("credential_mode") == BackupLocation.CredentialMode.STATIC
        ):
            for key in ("access_key", "secret_key"):
                if not creds.get(key):
                    self.add_error(key, "Required for static credentials.")
        if provider == P.S3 and data.get("credential_mode") == BackupLocation.CredentialMode.STS:
            if not re.fullmatch(
                r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+", data.get("role_arn", "")
            ):
                self.add_error(
                    "role_arn", "Give a role ARN like arn:aws:iam::123456789012:role/backup."
                )
        if provider == P.AZURE:
            for key in AZURE_AUTH.get(self.azure_auth, ()):
                if not creds.get(key):
                    self.add_error(key, "Required for this way of authenticating.")
        if (
            provider == P.GCS
            and not creds.get("service_account_json")
            and not data.get("endpoint_url")
        ):
            self.add_error("service_account_json", "Required (only an emulator works without).")
