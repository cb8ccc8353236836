"""The on-demand backup form."""

from __future__ import annotations

from datetime import timedelta

from django import forms

from locations.models import BackupLocation
from workspaces.access import locations_q
from workspaces.roles import Action

from .models import ClusterResources
from .naming import check_name, split_list

TTL_CHOICES = [
    ("24h", "1 day"),
    ("168h", "7 days"),
    ("720h", "30 days"),
    ("2160h", "90 days"),
    ("8760h", "1 year"),
]
TTL_HOURS = {value: int(value[:-1]) for value, _ in TTL_CHOICES}


class BackupForm(forms.Form):
    name = forms.CharField(
        required=False,
        max_length=63,
        help_text="Leave empty for <prefix>-<cluster>-<date and time>.",
    )
    prefix = forms.CharField(max_length=20, initial="manual")
    location = forms.ModelChoiceField(queryset=BackupLocation.objects.none())
    ttl = forms.ChoiceField(label="Keep for (expiry)", choices=TTL_CHOICES, initial="720h")
    include_namespaces = forms.MultipleChoiceField(
        required=False, help_text="None selected: every namespace."
    )
    exclude_namespaces = forms.MultipleChoiceField(required=False)
    cluster_resources = forms.ChoiceField(
        label="Include cluster-wide resources",
        choices=ClusterResources.choices,
        initial=ClusterResources.AUTO,
    )
    include_disks = forms.BooleanField(
        required=False,
        label="Include all disks (volume data)",
        help_text="Needs a node agent in the cluster; without one the backup says so in its warnings.",
    )
    label_selector = forms.CharField(required=False, help_text="e.g. app=shop,tier!=cache")
    include_resources = forms.CharField(
        required=False, help_text="Comma-separated, e.g. deployments.apps,configmaps. Empty = all."
    )
    exclude_resources = forms.CharField(required=False, help_text="Comma-separated.")

    def __init__(self, *args, user, cluster, namespaces: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.cluster = cluster
        usable = BackupLocation.objects.filter(locations_q(user, Action.BACKUP)).exclude(
            status=BackupLocation.Status.UNAVAILABLE
        )
        self.fields["location"].queryset = usable
        default = usable.filter(workspace=cluster.workspace, is_default=True).first()
        if default:
            self.fields["location"].initial = default.pk
        choices = [(ns, ns) for ns in namespaces]
        self.fields["include_namespaces"].choices = choices
        self.fields["exclude_namespaces"].choices = choices
        for name in ("include_namespaces", "exclude_namespaces"):
            self.fields[name].widget.attrs["size"] = min(10, max(3, len(choices)))

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if name and (problem := check_name(name)):
            raise forms.ValidationError(problem)
        return name

    def clean_prefix(self) -> str:
        prefix = self.cleaned_data["prefix"].strip()
        if problem := check_name(prefix):
            raise forms.ValidationError(problem)
        return prefix

    def options(self) -> dict:
        """Keyword arguments for jobs.start_backup."""
        data = self.cleaned_data
        return {
            "name": data["name"],
            "prefix": data["prefix"],
            "ttl": timedelta(hours=TTL_HOURS[data["ttl"]]),
            "include_namespaces": data["include_namespaces"],
            "exclude_namespaces": data["exclude_namespaces"],
            "include_resources": split_list(data["include_resources"]),
            "exclude_resources": split_list(data["exclude_resources"]),
            "cluster_resources": data["cluster_resources"],
            "label_selector": data["label_selector"].strip(),
            "include_disks": data["include_disks"],
        }
