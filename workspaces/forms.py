"""Forms for workspaces, members and clusters. Secrets are never rendered back."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils.text import slugify

from .kube import KubeconfigError, parse_kubeconfig
from .models import Cluster, Workspace, dns_label
from .roles import ROLE_HELP, Action, Role

MAX_KUBECONFIG_BYTES = 256 * 1024


class WorkspaceForm(forms.ModelForm):
    class Meta:
        model = Workspace
        fields = ["name", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        slug = slugify(name)
        if not slug:
            raise forms.ValidationError("Use at least one letter or digit.")
        if Workspace.objects.filter(slug=slug).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError("A workspace with this name already exists.")
        return name

    def save(self, commit: bool = True) -> Workspace:
        self.instance.slug = slugify(self.cleaned_data["name"])
        return super().save(commit)


class GrantForm(forms.Form):
    """Give a user (by username) or a team a role in a workspace."""

    username = forms.CharField(required=False, label="User", help_text="Their username")
    team = forms.ModelChoiceField(
        queryset=Group.objects.order_by("name"), required=False, empty_label="(no team)"
    )
    role = forms.ChoiceField(
        choices=Role.choices,
        initial=Role.VIEWER,
        help_text="; ".join(f"{Role(r).label}: {text}" for r, text in ROLE_HELP.items()),
    )

    def clean(self) -> dict:
        data = super().clean()
        username = (data.get("username") or "").strip()
        team = data.get("team")
        if bool(username) == bool(team):
            raise forms.ValidationError("Name either a user or a team (one of the two).")
        if username:
            user = get_user_model().objects.filter(username=username, is_active=True).first()
            if user is None:
                self.add_error("username", f"There is no active user named {username!r}.")
            data["user"] = user
        return data


class KubeconfigField(forms.FileField):
    """A kubeconfig uploaded as a file; checked to be self-contained and usable."""

    def clean(self, data, initial=None):
        upload = super().clean(data, initial)
        if upload is None:
            return ""
        if upload.size > MAX_KUBECONFIG_BYTES:
            raise forms.ValidationError("That file is too large to be a kubeconfig (256 KiB max).")
        try:
            text = upload.read().decode("utf-8")
        except UnicodeDecodeError:
            raise forms.ValidationError("The kubeconfig must be UTF-8 text.") from None
        try:
            parse_kubeconfig(text)
        except KubeconfigError as exc:
            raise forms.ValidationError(str(exc)) from None
        return text


class ClusterForm(forms.Form):
    name = forms.CharField(max_length=40, validators=[dns_label])
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    kubeconfig = KubeconfigField(
        help_text="A self-contained kubeconfig (kubectl config view --raw --flatten). "
        "It is encrypted at rest and never shown again."
    )
    etcd_endpoint = forms.URLField(
        required=False,
        label="etcd endpoint",
        assume_scheme="https",
        help_text="Optional, for etcd snapshots: e.g. https://10.0.0.5:2379",
    )
    etcd_ca = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), label="etcd CA (PEM)"
    )
    etcd_cert = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), label="etcd client certificate"
    )
    etcd_key = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off"}),
        label="etcd client key",
        help_text="Encrypted at rest and never shown again.",
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if Cluster.objects.filter(name=name).exists():
            raise forms.ValidationError("A cluster with this name is already registered.")
        return name

    def clean(self) -> dict:
        data = super().clean()
        tls = [data.get("etcd_cert"), data.get("etcd_key")]
        if any(tls) and not all(tls):
            raise forms.ValidationError("Give both the etcd client certificate and its key.")
        if any(tls) and not data.get("etcd_endpoint"):
            self.add_error("etcd_endpoint", "Certificates need an endpoint.")
        return data


class ClusterEditForm(forms.Form):
    """Change a registered cluster. The kubeconfig and the etcd key are never shown:
    an empty field keeps what is stored, a new one replaces it."""

    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    kubeconfig = KubeconfigField(
        required=False,
        label="Replace the kubeconfig",
        help_text="Leave empty to keep the stored one. A new one is checked and the cluster's "
        "health is checked with it.",
    )
    etcd_endpoint = ClusterForm.base_fields["etcd_endpoint"]
    etcd_ca = ClusterForm.base_fields["etcd_ca"]
    etcd_cert = ClusterForm.base_fields["etcd_cert"]
    etcd_key = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off"}),
        label="Replace the etcd client key",
        help_text="Leave empty to keep the stored key. Clearing the endpoint removes the "
        "certificates and the key.",
    )

    @classmethod
    def for_cluster(cls, cluster: Cluster, data=None, files=None) -> ClusterEditForm:
        initial = {
            f: getattr(cluster, f) for f in ("description", "etcd_endpoint", "etcd_ca", "etcd_cert")
        }
        return cls(data, files, initial=initial)


class ClusterGrantForm(GrantForm):
    """Give a user or a team actions on one cluster (no role in its workspace)."""

    role = None
    actions = forms.MultipleChoiceField(
        choices=Action.choices,
        initial=[Action.VIEW],
        widget=forms.CheckboxSelectMultiple,
        help_text="Seeing the cluster is always included.",
    )


class TeamForm(forms.Form):
    """A new team, created with a role in a workspace the creator administers (so a
    team is never an orphan any Admin could take over)."""

    name = forms.CharField(max_length=150)
    workspace = forms.ModelChoiceField(queryset=Workspace.objects.none())
    role = GrantForm.base_fields["role"]

    def __init__(self, *args, workspaces=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["workspace"].queryset = workspaces

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the team a name.")
        if Group.objects.filter(name=name).exists():
            raise forms.ValidationError("A team with this name already exists.")
        return name


class TeamMemberForm(forms.Form):
    username = forms.CharField(label="Add a member", help_text="Their username")

    def clean_username(self):
        username = self.cleaned_data["username"].strip()
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise forms.ValidationError(f"There is no active user named {username}.")
        return user
