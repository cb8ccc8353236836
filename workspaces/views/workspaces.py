"""Workspaces: list, create, detail, members and roles, audit trail."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from backups.views.schedules import shown_runs

from .. import audit
from ..access import can, workspaces_for
from ..forms import GrantForm, WorkspaceForm
from ..models import Workspace
from ..roles import Action, Role
from .common import fetch, fragment, page_of, visible_workspace, with_cluster_counts
from .listing import Filter, Listing


@login_required
def workspace_list(request: HttpRequest) -> HttpResponse:
    workspaces = with_cluster_counts(request.user, workspaces_for(request.user)).order_by("name")
    return render(
        request,
        "workspaces/list.html",
        {
            "page": page_of(request, workspaces),
            "can_create": request.user.has_perm("workspaces.add_workspace"),
        },
    )


@login_required
@permission_required("workspaces.add_workspace", raise_exception=True)
def workspace_create(request: HttpRequest) -> HttpResponse:
    """Whoever creates a workspace becomes its first Admin."""
    form = WorkspaceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                workspace = form.save(commit=False)
                workspace.created_by = request.user
                workspace.save()
                workspace.grant(Role.ADMIN, user=request.user)
                audit.record(request.user, "created", workspace)
        except IntegrityError:  # the same name, created at the same moment
            form.add_error("name", "A workspace with this name already exists.")
        else:
            messages.success(request, f"Workspace {workspace} created; you are its Admin.")
            return redirect(workspace)
    return render(request, "workspaces/create.html", {"form": form})


def _detail_context(request: HttpRequest, workspace: Workspace, grant_form=None) -> dict:
    """Each list through its own rule: a single-cluster grantee gets that cluster, its
    runs and events, and no members or workspace-wide schedules."""
    user = request.user
    return {
        "sees_whole": can(user, Action.VIEW, workspace),
        "schedules": workspace.schedules.restrict(user)
        .filter(cluster__isnull=True)
        .select_related("location"),
        "runs": shown_runs(
            user, workspace.backup_runs.restrict(user).select_related("schedule")[:10]
        ),
        "can_backup": can(user, Action.BACKUP, workspace),
        "workspace": workspace,
        "clusters": workspace.clusters.restrict(user),
        "memberships": workspace.memberships.restrict(user).select_related("user", "group"),
        "events": workspace.audit_events.restrict(user)[:20],
        "can_manage": can(user, Action.MANAGE, workspace),
        "grant_form": grant_form or GrantForm(),
    }


@login_required
def workspace_detail(request: HttpRequest, slug: str) -> HttpResponse:
    workspace = visible_workspace(request, slug)
    return render(request, "workspaces/detail.html", _detail_context(request, workspace))


@login_required
@require_POST
def member_grant(request: HttpRequest, slug: str) -> HttpResponse:
    workspace = visible_workspace(request, slug, Action.MANAGE, "manage members")
    form = GrantForm(request.POST)
    if form.is_valid():
        user, team, role = (
            form.cleaned_data.get("user"),
            form.cleaned_data["team"],
            form.cleaned_data["role"],
        )
        membership = workspace.grant(role, user=user, group=team)
        audit.record(request.user, "granted", workspace, member=membership.holder_name, role=role)
        messages.success(
            request, f"{membership.holder_name} is now {membership.get_role_display()}."
        )
        if not request.htmx:
            return redirect(workspace)
        form = None
    context = _detail_context(request, workspace, grant_form=form)
    # HTMX swaps only 2xx answers, so it gets the form with its errors as a 200.
    status = 200 if form is None or request.htmx else 400
    return render(
        request, fragment(request, "workspaces/detail.html", "members"), context, status=status
    )


@login_required
@require_POST
def member_revoke(request: HttpRequest, slug: str, membership_id: int) -> HttpResponse:
    workspace = visible_workspace(request, slug, Action.MANAGE, "manage members")
    membership = fetch(request, workspace.memberships, pk=membership_id)
    if membership.user_id == request.user.pk and membership.role == Role.ADMIN:
        others = workspace.memberships.filter(role=Role.ADMIN).exclude(pk=membership.pk)
        if not others.exists():
            messages.error(request, "You are the last Admin: grant Admin to someone else first.")
            return redirect(workspace)
    name = membership.holder_name
    workspace.revoke(membership)
    audit.record(request.user, "revoked", workspace, member=name)
    messages.success(request, f"{name} no longer has a role in {workspace}.")
    if request.htmx:
        return HttpResponseClientRedirect(workspace.get_absolute_url())
    return redirect(workspace)


AUDIT = Listing(
    search=("actor_name", "action", "object_type", "object_repr"),
    search_label="Who, what or which",
    filters=(Filter("action", "Action", "action"), Filter("type", "Kind of object", "object_type")),
    dated="at",
    sorts={"newest": ("Newest first", "-at"), "oldest": ("Oldest first", "at")},
    default_sort="newest",
)


@login_required
def workspace_audit(request: HttpRequest, slug: str) -> HttpResponse:
    workspace = visible_workspace(request, slug)
    events = workspace.audit_events.restrict(request.user).select_related("actor")
    events, listing = AUDIT.apply(request, events)
    context = {**listing, "workspace": workspace, "page": page_of(request, events)}
    return render(request, "workspaces/audit.html", context)
