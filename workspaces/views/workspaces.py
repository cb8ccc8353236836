"""Workspaces: list, create, detail, members and roles, audit trail."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from .. import audit
from ..access import can, clusters_for, workspace_visible_q, workspaces_for
from ..forms import GrantForm, WorkspaceForm
from ..models import AuditEvent, Membership, Workspace
from ..roles import Action, Role
from .common import fragment, page_of, require


def _visible_workspace(request: HttpRequest, slug: str) -> Workspace:
    return get_object_or_404(Workspace.objects.filter(workspace_visible_q(request.user)), slug=slug)


@login_required
def workspace_list(request: HttpRequest) -> HttpResponse:
    workspaces = (
        workspaces_for(request.user).annotate(cluster_count=Count("clusters")).order_by("name")
    )
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
    from backups.models import BackupRun, Schedule

    can_manage = can(request.user, Action.MANAGE, workspace)
    return {
        "schedules": Schedule.objects.filter(
            workspace=workspace, cluster__isnull=True
        ).select_related("location"),
        "runs": BackupRun.objects.filter(workspace=workspace)
        .select_related("schedule")
        .prefetch_related("backups")[:10],
        "can_backup": can(request.user, Action.BACKUP, workspace),
        "workspace": workspace,
        "clusters": clusters_for(request.user).filter(workspace=workspace),
        "memberships": workspace.memberships.select_related("user", "group"),
        "events": AuditEvent.objects.filter(workspace=workspace)[:20],
        "can_manage": can_manage,
        "grant_form": grant_form or GrantForm(),
    }


@login_required
def workspace_detail(request: HttpRequest, slug: str) -> HttpResponse:
    workspace = _visible_workspace(request, slug)
    return render(request, "workspaces/detail.html", _detail_context(request, workspace))


@login_required
@require_POST
def member_grant(request: HttpRequest, slug: str) -> HttpResponse:
    workspace = _visible_workspace(request, slug)
    require(request.user, Action.MANAGE, workspace, "manage members")
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
    workspace = _visible_workspace(request, slug)
    require(request.user, Action.MANAGE, workspace, "manage members")
    membership = get_object_or_404(Membership, pk=membership_id, workspace=workspace)
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


@login_required
def workspace_audit(request: HttpRequest, slug: str) -> HttpResponse:
    workspace = _visible_workspace(request, slug)
    events = AuditEvent.objects.filter(workspace=workspace).select_related("actor")
    return render(
        request, "workspaces/audit.html", {"workspace": workspace, "page": page_of(request, events)}
    )
