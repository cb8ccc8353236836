"""Location-level grants: view < use < change, to a user or a team.

A grant of one level includes the levels below it (who may write backups to a
location may also see it), so each grant assigns every permission up to its level.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from guardian.shortcuts import assign_perm, remove_perm

from .models import BackupLocation, LocationGroupObjectPermission, LocationUserObjectPermission

LEVELS = {
    "view": ("view_backuplocation",),
    "use": ("view_backuplocation", "use_backuplocation"),
    "change": ("view_backuplocation", "use_backuplocation", "change_backuplocation"),
}
ALL_PERMS = LEVELS["change"]


@dataclass
class Grant:
    kind: str  # "user" or "team"
    holder_id: int
    holder: str
    access: str


class GrantForm(forms.Form):
    username = forms.CharField(required=False, label="User")
    team = forms.ModelChoiceField(
        queryset=Group.objects.order_by("name"), required=False, empty_label="(no team)"
    )
    access = forms.ChoiceField(
        choices=[
            ("view", "View: see it and its backups"),
            ("use", "Use: write backups to it"),
            ("change", "Change: edit, validate, delete it"),
        ]
    )

    def clean(self) -> dict:
        data = super().clean()
        username = (data.get("username") or "").strip()
        if bool(username) == bool(data.get("team")):
            raise forms.ValidationError("Name either a user or a team (one of the two).")
        if username:
            data["user"] = (
                get_user_model().objects.filter(username=username, is_active=True).first()
            )
            if data["user"] is None:
                self.add_error("username", f"There is no active user named {username!r}.")
        return data

    @transaction.atomic
    def save(self, location: BackupLocation):
        holder = self.cleaned_data.get("user") or self.cleaned_data["team"]
        for perm in ALL_PERMS:
            remove_perm(perm, holder, location)
        for perm in LEVELS[self.cleaned_data["access"]]:
            assign_perm(perm, holder, location)
        return holder


def grants_of(location: BackupLocation) -> list[Grant]:
    """One row per user or team: the highest level they hold (two queries)."""
    rank = {perm: i for i, perm in enumerate(ALL_PERMS)}
    names = {0: "view", 1: "use", 2: "change"}
    best: dict[tuple[str, int], Grant] = {}
    sources = [
        ("user", LocationUserObjectPermission.objects.filter(content_object=location).select_related("user", "permission"), "user"),
        ("team", LocationGroupObjectPermission.objects.filter(content_object=location).select_related("group", "permission"), "group"),
    ]  # fmt: skip
    for kind, rows, attr in sources:
        for row in rows:
            holder = getattr(row, attr)
            level = names[rank.get(row.permission.codename, 0)]
            key = (kind, holder.pk)
            name = holder.get_username() if kind == "user" else f"team {holder.name}"
            if key not in best or rank[LEVELS[level][-1]] > rank[LEVELS[best[key].access][-1]]:
                best[key] = Grant(kind, holder.pk, name, level)
    return sorted(best.values(), key=lambda g: g.holder)


@transaction.atomic
def revoke(location: BackupLocation, kind: str, holder_id: str) -> str:
    """Remove every location permission of one user or team; returns who, or ''."""
    if not holder_id.isdigit():
        return ""
    model = get_user_model() if kind == "user" else Group if kind == "team" else None
    holder = model.objects.filter(pk=int(holder_id)).first() if model else None
    if holder is None:
        return ""
    for perm in ALL_PERMS:
        remove_perm(perm, holder, location)
    return holder.get_username() if kind == "user" else f"team {holder.name}"
