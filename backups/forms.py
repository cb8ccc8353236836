"""Forms for on-demand backups, workspace backups and schedules.

They share one set of backup options (OptionsForm), so a schedule backs up
exactly what the same choices would back up on demand.
"""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.urls import reverse

from locations.models import BackupLocation
from workspaces.models import Cluster
from workspaces.roles import Action

from . import cron
from .models import BackupOptions, ClusterResources, ResourceModifierSet, Schedule
from .naming import (
    check_name,
    format_pairs,
    parse_class_mapping,
    parse_mapping,
    parse_volume_policy,
    split_list,
)
from .retention import TIERS

TTL_CHOICES = [
    ("24h", "1 day"),
    ("168h", "7 days"),
    ("720h", "30 days"),
    ("2160h", "90 days"),
    ("8760h", "1 year"),
]
TTL_HOURS = {value: int(value[:-1]) for value, _ in TTL_CHOICES}


def ttl_choice(ttl: timedelta) -> str:
    hours = int(ttl.total_seconds() // 3600)
    return f"{hours}h" if f"{hours}h" in TTL_HOURS else "720h"


class SelectorField(forms.CharField):
    """A label selector, checked as the API server would (``app=shop,tier!=cache``)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", 500)  # the model field's length
        super().__init__(**kwargs)

    def clean(self, value) -> str:
        from .engine.filters import FilterError, parse_selector

        text = super().clean(value).strip()
        try:
            parse_selector(text)
        except FilterError as exc:
            raise forms.ValidationError(f"Not a label selector: {exc}") from None
        return text


class ParsedField(forms.CharField):
    """Text that ``parse`` turns into its value (a mapping...); its ValueError is the
    field's error."""

    def __init__(self, parse, **kwargs):
        self.parse = parse
        super().__init__(required=False, **kwargs)

    def clean(self, value):
        try:
            return self.parse(super().clean(value))
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


class OptionsForm(forms.Form):
    """What to back up, where to, and for how long."""

    prefix = forms.CharField(
        max_length=20,
        initial="manual",
        help_text="Backups are named <prefix>-<cluster>-<date and time>.",
    )
    location = forms.ModelChoiceField(queryset=BackupLocation.objects.none())
    ttl = forms.ChoiceField(label="Keep for (expiry)", choices=TTL_CHOICES, initial="720h")
    cluster_resources = forms.ChoiceField(
        label="Include cluster-wide resources",
        choices=ClusterResources.choices,
        initial=ClusterResources.AUTO,
    )
    include_disks = forms.BooleanField(
        required=False,
        label="Include all disks (volume data)",
        help_text=(
            "Each claim's data: a CSI snapshot where its driver has a snapshot class, and a "
            "copy into the location (read from the snapshot, else from the live volume after "
            "the pods' pre-backup hooks)."
        ),
    )
    volume_mode = forms.ChoiceField(
        label="Volume data",
        choices=BackupOptions.VolumeMode.choices,
        initial="auto",
        required=False,  # scripts and older pages that do not send it get "auto"
    )
    volume_policy = ParsedField(
        parse_volume_policy,
        max_length=2000,
        label="Per storage class",
        help_text="class=skip|snapshot|copy|snapshot_and_copy, comma-separated; e.g. scratch=skip",
    )
    label_selector = SelectorField(help_text="e.g. app=shop,tier!=cache")
    include_resources = forms.CharField(
        required=False, help_text="Comma-separated, e.g. deployments.apps,configmaps. Empty = all."
    )
    exclude_resources = forms.CharField(required=False, help_text="Comma-separated.")

    def __init__(self, *args, user, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        usable = BackupLocation.objects.restrict(user, Action.BACKUP).exclude(
            status=BackupLocation.Status.UNAVAILABLE
        )
        self.fields["location"].queryset = usable
        default = usable.filter(workspace=workspace, is_default=True).first()
        if default and not self.initial.get("location"):
            self.fields["location"].initial = default.pk

    def clean_prefix(self) -> str:
        prefix = self.cleaned_data["prefix"].strip()
        if problem := check_name(prefix):
            raise forms.ValidationError(problem)
        return prefix

    def option_values(self) -> dict:
        """The backup options as model field values (for start_backup or a Schedule)."""
        data = self.cleaned_data
        return {
            "ttl": timedelta(hours=TTL_HOURS[data["ttl"]]),
            "include_namespaces": self.namespaces("include_namespaces"),
            "exclude_namespaces": self.namespaces("exclude_namespaces"),
            "include_resources": split_list(data["include_resources"]),
            "exclude_resources": split_list(data["exclude_resources"]),
            "cluster_resources": data["cluster_resources"],
            "label_selector": data["label_selector"].strip(),
            "include_disks": data["include_disks"],
            "volume_mode": data["volume_mode"],
            "volume_policy": data["volume_policy"],
        }

    def clean_volume_mode(self) -> str:
        return self.cleaned_data.get("volume_mode") or BackupOptions.VolumeMode.AUTO

    def namespaces(self, field: str) -> list[str]:
        value = self.cleaned_data.get(field) or []
        return split_list(value) if isinstance(value, str) else list(value)


class BackupForm(OptionsForm):
    """Back up one cluster now; its namespaces are offered as a list."""

    name = forms.CharField(
        required=False,
        max_length=63,
        help_text="Leave empty for <prefix>-<cluster>-<date and time>.",
    )
    include_namespaces = forms.MultipleChoiceField(
        required=False, help_text="None selected: every namespace."
    )
    exclude_namespaces = forms.MultipleChoiceField(required=False)
    field_order = ["name", "prefix", "location", "ttl", "include_namespaces", "exclude_namespaces"]

    def __init__(self, *args, user, cluster, namespaces: list[str], **kwargs):
        super().__init__(*args, user=user, workspace=cluster.workspace, **kwargs)
        self.cluster = cluster
        choices = [(ns, ns) for ns in namespaces]
        for name in ("include_namespaces", "exclude_namespaces"):
            self.fields[name].choices = choices
            self.fields[name].widget.attrs["size"] = min(10, max(3, len(choices)))

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if name and (problem := check_name(name)):
            raise forms.ValidationError(problem)
        return name

    def options(self) -> dict:
        """Keyword arguments for jobs.start_backup."""
        return {
            "name": self.cleaned_data["name"],
            "prefix": self.cleaned_data["prefix"],
            **self.option_values(),
        }


class WorkspaceBackupForm(OptionsForm):
    """Back up every healthy cluster of a workspace now (namespaces by name)."""

    include_namespaces = forms.CharField(required=False, help_text="Comma-separated; empty = all.")
    exclude_namespaces = forms.CharField(required=False, help_text="Comma-separated.")
    field_order = ["prefix", "location", "ttl", "include_namespaces", "exclude_namespaces"]


class ScheduleForm(WorkspaceBackupForm):
    preset = forms.ChoiceField(label="When", choices=Schedule.Preset.choices)
    cron = forms.CharField(
        required=False,
        max_length=cron.MAX_LENGTH,
        label="Cron expression",
        help_text="Five fields: minute, hour, day of the month, month and weekday, "
        "in the console's time zone.",
    )
    paused = forms.BooleanField(required=False, label="Paused")
    copy_to = forms.ModelChoiceField(
        queryset=BackupLocation.objects.none(),
        required=False,
        label="Copy every backup to",
        help_text="A second location (another provider or region), verified by checksum.",
    )
    keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly = (
        forms.IntegerField(required=False, min_value=0, max_value=1000, label=label)
        for label in ("Keep the last", "Hourly", "Daily", "Weekly", "Monthly", "Yearly")
    )
    field_order = [
        "prefix",
        "preset",
        "cron",
        "location",
        "ttl",
        "include_namespaces",
        "exclude_namespaces",
    ]

    # The schedule's fields the form shows as stored, and its lists (comma-separated).
    AS_STORED = ("prefix", "preset", "cron", "paused", "cluster_resources", "label_selector",
                 "include_disks", "volume_mode")  # fmt: skip
    LISTS = ("include_namespaces", "exclude_namespaces", "include_resources", "exclude_resources")

    def __init__(self, *args, instance: Schedule, **kwargs):
        self.instance = instance
        if instance.pk:
            kwargs.setdefault("initial", {}).update(
                {name: getattr(instance, name) for name in self.AS_STORED}
                | {name: ", ".join(getattr(instance, name)) for name in self.LISTS}
                | {tier: getattr(instance, tier) or None for tier in TIERS},
                location=instance.location_id,
                copy_to=instance.copy_to_id,
                ttl=ttl_choice(instance.ttl),
                volume_policy=format_pairs(instance.volume_policy),
            )
        super().__init__(*args, **kwargs)
        self.fields["copy_to"].queryset = self.fields["location"].queryset
        self.fields["keep_last"].help_text = (
            "Retention tiers, besides the expiry: keep the newest N, and the newest backup of "
            "each of the last N hours, days, weeks, months, years. Empty: not used."
        )
        self.fields["prefix"].initial = "scheduled"
        # The next five runs are shown as the user types or picks a preset (HTMX).
        preview = reverse("schedule_preview")
        self.fields["cron"].widget.attrs.update(
            {
                "hx-get": preview,
                "hx-trigger": "input changed delay:300ms",
                "hx-target": "#cron-preview",
                "hx-include": "[name=preset]",
                "placeholder": "0 2 * * *",
            }
        )
        self.fields["preset"].widget.attrs.update(
            {"hx-get": preview, "hx-target": "#cron-preview", "hx-include": "[name=cron]"}
        )

    def clean(self) -> dict:
        data = super().clean()
        if data.get("copy_to") and data.get("copy_to") == data.get("location"):
            self.add_error("copy_to", "Choose another location than the one backups go to.")
        if data.get("preset") == Schedule.Preset.CUSTOM:
            expression = (data.get("cron") or "").strip()
            if problem := cron.problem(expression):
                self.add_error("cron", problem)
            data["cron"] = expression
        else:
            data["cron"] = ""
        return data

    def save(self, now) -> Schedule:
        schedule = self.instance
        data = self.cleaned_data
        for name in ("prefix", "location", "preset", "cron", "paused"):
            setattr(schedule, name, data[name])
        schedule.copy_to = data.get("copy_to")
        for tier in TIERS:
            setattr(schedule, tier, data.get(tier) or 0)
        for field, value in self.option_values().items():
            setattr(schedule, field, value)
        schedule.plan_next(now)
        schedule.save()
        return schedule


class RestoreForm(forms.Form):
    """The restore wizard: where to, what, and how to treat objects that exist."""

    target_cluster = forms.ModelChoiceField(
        queryset=None,
        label="Restore into",
        empty_label="Choose a cluster",
        help_text="Only clusters you may restore into. Nothing is chosen for you: "
        "restoring into the source cluster overwrites what runs there.",
    )
    include_namespaces = forms.MultipleChoiceField(
        required=False,
        label="Namespaces",
        help_text="None selected: every namespace in the backup.",
    )
    namespace_mapping = ParsedField(
        parse_mapping,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "shop=shop-restored"}),
        help_text="Restore a namespace under another name: source=target, one a line or comma-separated.",
    )
    cluster_resources = forms.ChoiceField(
        label="Include cluster-wide resources", choices=ClusterResources.choices, initial="auto"
    )
    restore_pvs = forms.BooleanField(
        required=False,
        label="Restore persistent volumes",
        help_text="Each claim's data comes back before its pods start: from its snapshot in "
        "the same cluster, else from its copy in the location. Off by default, unlike "
        "Velero (which restores volumes unless told not to): a recreated volume can point "
        "another cluster at the source's disk. Left off, the volumes are not restored and "
        "the preview says what that means for each claim.",
    )
    storage_class_mapping = ParsedField(
        parse_class_mapping,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "standard=fast"}),
        help_text="Give restored claims another storage class: backup=target, comma-separated.",
    )
    preserve_node_ports = forms.BooleanField(
        required=False,
        label="Preserve node ports",
        help_text="Off: every Service gets new node ports, so it cannot collide with one "
        "already using them (Velero keeps node ports that were set explicitly). The "
        "preview lists the ports each Service would lose.",
    )
    existing_policy = forms.ChoiceField(
        label="Objects that already exist",
        choices=[
            ("none", "Leave them, and warn when they differ"),
            ("update", "Update them to the backup's version"),
        ],
        initial="none",
    )
    label_selector = SelectorField()
    include_resources = forms.CharField(
        required=False,
        help_text="Comma-separated; empty = all. Naming a control-plane kind (such as "
        "ipaddresses, left out by default) restores it.",
    )
    exclude_resources = forms.CharField(required=False, help_text="Comma-separated.")
    modifier_set = forms.ModelChoiceField(
        queryset=None,
        required=False,
        label="Resource modifiers",
        help_text="Rules that change objects as they are restored, from the target "
        "cluster's workspace; the preview applies them exactly as the restore will.",
    )

    def __init__(self, *args, user, backup, namespaces: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target_cluster"].queryset = Cluster.objects.restrict(
            user, Action.RESTORE
        ).select_related("workspace")
        choices = [(ns, ns) for ns in namespaces]
        self.fields["include_namespaces"].choices = choices
        self.fields["include_namespaces"].widget.attrs["size"] = min(10, max(3, len(choices)))
        self.fields["modifier_set"].queryset = ResourceModifierSet.objects.restrict(
            user
        ).select_related("workspace")

    def clean(self) -> dict:
        data = super().clean()
        chosen, target = data.get("modifier_set"), data.get("target_cluster")
        if chosen is not None and target is not None and (problem := chosen.refusal(target)):
            self.add_error("modifier_set", problem)
        return data

    def options(self) -> dict:
        data = self.cleaned_data
        return {
            "include_namespaces": list(data["include_namespaces"]),
            "namespace_mapping": data["namespace_mapping"],
            "cluster_resources": data["cluster_resources"],
            "restore_pvs": data["restore_pvs"],
            "storage_class_mapping": data["storage_class_mapping"],
            "preserve_node_ports": data["preserve_node_ports"],
            "existing_policy": data["existing_policy"],
            "label_selector": data["label_selector"].strip(),
            "include_resources": split_list(data["include_resources"]),
            "exclude_resources": split_list(data["exclude_resources"]),
            "modifier_set": data["modifier_set"],
            "resource_modifiers": data["modifier_set"].rules if data["modifier_set"] else "",
        }


class WorkspaceRestoreForm(forms.Form):
    """Restore a workspace run: the same namespaces into each cluster of the workspace."""

    include_namespaces = forms.CharField(
        required=False, label="Namespaces", help_text="Comma-separated; empty = all in each backup."
    )
    existing_policy = forms.ChoiceField(
        label="Objects that already exist",
        choices=[("none", "Leave them, and warn when they differ"), ("update", "Update them")],
        initial="none",
    )

    def options(self) -> dict:
        return {
            "include_namespaces": split_list(self.cleaned_data["include_namespaces"]),
            "existing_policy": self.cleaned_data["existing_policy"],
        }
