"""Resource modifier sets of a workspace: list, create, edit, delete.

Seeing them needs a role in the workspace; changing them needs one that may restore
(Operator or Admin), since they shape what a restore creates.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from workspaces import audit
from workspaces.access import can
from workspaces.roles import Action
from workspaces.views.common import fetch, visible_workspace

from ..models import ResourceModifierSet

EXAMPLE = """version: v1
resourceModifierRules:
- conditions:
    groupResource: persistentvolumeclaims
    namespaces: [shop]
  patches:
  - operation: replace
    path: /spec/storageClassName
    value: premium
"""


class ModifierSetForm(forms.ModelForm):
    class Meta:
        model = ResourceModifierSet
        fields = ["name", "description", "rules"]
        widgets = {"rules": forms.Textarea(attrs={"rows": 16, "placeholder": EXAMPLE})}


def _save(request, form, workspace, verb: str) -> ResourceModifierSet | None:
    """Save, or put the clash of names on the form (a race too: the constraint decides)."""
    chosen = form.save(commit=False)
    chosen.workspace = workspace
    chosen.created_by = chosen.created_by or request.user
    try:
        with transaction.atomic():
            chosen.save()
    except IntegrityError:
        form.add_error("name", "This workspace already has a set of that name.")
        return None
    audit.record(request.user, verb, chosen, workspace)
    return chosen


@login_required
def modifier_set_list(request: HttpRequest, slug: str) -> HttpResponse:
    workspace = visible_workspace(request, slug)
    sets = ResourceModifierSet.objects.restrict(request.user).filter(workspace=workspace)
    return render(
        request,
        "backups/modifier_set_list.html",
        {
            "workspace": workspace,
            "sets": sets.select_related("created_by"),
            "can_change": can(request.user, Action.RESTORE, workspace),
        },
    )


@login_required
def modifier_set_create(request: HttpRequest, slug: str) -> HttpResponse:
    workspace = visible_workspace(request, slug, Action.RESTORE, "change resource modifiers")
    form = ModifierSetForm(request.POST or None, instance=ResourceModifierSet(workspace=workspace))
    if request.method == "POST" and form.is_valid():
        chosen = _save(request, form, workspace, "created resource modifiers")
        if chosen is not None:
            messages.success(request, f"Resource modifier set {chosen.name} saved.")
            return redirect(chosen)
    return render(request, "backups/modifier_set_edit.html", {"workspace": workspace, "form": form})


@login_required
def modifier_set_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The set's rules; a POST (with the restore role) saves an edit."""
    sets = ResourceModifierSet.objects.select_related("workspace", "created_by")
    action = Action.RESTORE if request.method == "POST" else Action.VIEW
    chosen = fetch(request, sets, action, "change resource modifiers", pk=pk)
    form = ModifierSetForm(request.POST or None, instance=chosen)
    if request.method == "POST" and form.is_valid():
        if _save(request, form, chosen.workspace, "changed resource modifiers") is not None:
            messages.success(request, f"Resource modifier set {chosen.name} saved.")
            return redirect(chosen)
    context = {
        "workspace": chosen.workspace,
        "set": chosen,
        "form": form,
        "can_change": can(request.user, Action.RESTORE, chosen.workspace),
        "restores": chosen.restores.restrict(request.user).order_by("-created_at")[:10],
    }
    return render(request, "backups/modifier_set_detail.html", context)


@login_required
def modifier_set_delete(request: HttpRequest, pk: int) -> HttpResponse:
    sets = ResourceModifierSet.objects.select_related("workspace")
    chosen = fetch(request, sets, Action.RESTORE, "change resource modifiers", pk=pk)
    if request.method == "POST":
        workspace = chosen.workspace
        audit.record(request.user, "deleted resource modifiers", chosen, workspace)
        chosen.delete()
        messages.success(
            request, "Resource modifier set deleted; restores that used it keep their copy."
        )
        return redirect("modifier_set_list", slug=workspace.slug)
    return render(request, "backups/modifier_set_delete.html", {"set": chosen})
