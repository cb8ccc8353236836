"""The rule form: what to tell, and where. A webhook's address is held to the
egress policy here (and again when each message is sent)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from palette_site import egress

from .models import Event, Rule

MAX_RECIPIENTS = 20


class RuleForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        choices=Event.choices, widget=forms.CheckboxSelectMultiple, label="Tell about"
    )
    url = forms.CharField(
        required=False,
        max_length=2000,
        label="Webhook URL",
        widget=forms.PasswordInput(render_value=False),
        help_text="https://… It is stored encrypted and never shown again (it may hold a token).",
    )

    class Meta:
        model = Rule
        fields = ["name", "events", "channel", "recipients", "url"]
        widgets = {"recipients": forms.TextInput()}
        help_texts = {"recipients": "For e-mail: addresses, comma-separated."}

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        self.workspace = workspace

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if Rule.objects.filter(workspace=self.workspace, name=name).exists():
            raise ValidationError("This workspace already has a rule with this name.")
        return name

    def clean(self):
        data = super().clean()
        channel = data.get("channel")
        if channel == Rule.Channel.EMAIL:
            data["url"] = ""
            data["recipients"] = self._recipients(data.get("recipients", ""))
        elif channel in (Rule.Channel.WEBHOOK, Rule.Channel.SLACK):
            data["recipients"] = ""
            data["url"] = self._url(data.get("url", ""))
        return data

    def _recipients(self, raw: str) -> str:
        addresses = [a.strip() for a in raw.split(",") if a.strip()]
        if not addresses:
            self.add_error("recipients", "Give at least one e-mail address.")
            return ""
        if len(addresses) > MAX_RECIPIENTS:
            self.add_error("recipients", f"At most {MAX_RECIPIENTS} addresses.")
        for address in addresses:
            try:
                validate_email(address)
            except ValidationError:
                self.add_error("recipients", f"{address[:100]} is not an e-mail address.")
        return ", ".join(addresses)

    def _url(self, raw: str) -> str:
        url = raw.strip()
        try:
            parts = urlsplit(url)
            host = parts.hostname
            parts.port  # noqa: B018  (raises on a bad port)
        except ValueError:
            parts, host = None, None
        if not url:
            self.add_error("url", "Give the webhook's URL.")
        elif parts is None or parts.scheme not in ("http", "https") or not host:
            self.add_error("url", "The URL must start with https:// (or http://) and name a host.")
        else:
            try:
                egress.check_url(url, what="webhook address")
            except egress.EgressDenied as exc:
                self.add_error("url", str(exc))
            self.instance.url_host = host[:253]
        return url

    def save(self, commit: bool = True) -> Rule:
        rule = super().save(commit=False)
        rule.workspace = self.workspace
        rule.url = self.cleaned_data.get("url", "")
        if commit:
            rule.save()
        return rule
