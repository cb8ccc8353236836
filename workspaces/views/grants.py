"""Who may reach one cluster (grants to users and teams, beside the workspace's
roles), and the teams a workspace Admin may manage. Admins only."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from guardian.shortcuts import assign_perm, remove_perm

from .. import audit
from ..access import manageable_teams, workspaces_for
from ..forms import ClusterGrantForm, TeamForm, TeamMemberForm
from ..models import (
    Cluster,
    ClusterGroupObjectPermission,
    ClusterUserObjectPermission,
    Membership,
)
from ..roles import Action, codename
from .common import require, visible_cluster


def _admin_cluster(request: HttpRequest, name: str) -> Cluster:
    """The cluster, for an Admin of its workspace (a grant on the cluster is not enough)."""
    cluster = visible_cluster(request, name)
    require(request.user, Action.MANAGE, cluster.workspace, "manage who may reach this cluster")
    return cluster


def cluster_grants(cluster: Cluster) -> list[dict]:
    """Each user and team holding grants on the cluster, with the actions: two queries."""
    holders: dict[tuple, dict] = {}
    rows = [
        (("user", p.user_id), p.user.get_username(), p.permission.codename)
        for p in ClusterUserObjectPermission.objects.filter(content_object=cluster).select_related(
            "user", "permission"
        )
    ] + [
        (("team", p.group_id), f"team {p.group.name}", p.permission.codename)
        for p in ClusterGroupObjectPermission.objects.filter(content_object=cluster).select_related(
            "group", "permission"
        )
    ]
    for key, name, perm in rows:
        entry = holders.setdefault(key, {"kind": key[0], "id": key[1], "name": name, "actions": []})
        entry["actions"].append(perm.removesuffix("_cluster"))
    order = [a.value for a in Action]
    for entry in holders.values():
        entry["actions"].sort(key=lambda a: order.index(a) if a in order else len(order))
    return sorted(holders.values(), key=lambda e: (e["kind"], e["name"]))


@login_required
def cluster_access(request: HttpRequest, name: str) -> HttpResponse:
    """The workspace's roles (read here, changed on the workspace page) and the grants
    on this one cluster; a form gives a user or team actions on it."""
    cluster = _admin_cluster(request, name)
    form = ClusterGrantForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        holder = form.cleaned_data.get("user") or form.cleaned_data["team"]
        wanted = set(form.cleaned_data["actions"]) | {Action.VIEW}
        for action in Action:
            perm = codename(action.value, "cluster")
            (assign_perm if action in wanted else remove_perm)(perm, holder, cluster)
        who = holder.get_username() if form.cleaned_data.get("user") else f"team {holder.name}"
        audit.record(request.user, "granted", cluster, holder=who, actions=sorted(wanted))
        messages.success(request, f"{who} may now: {', '.join(sorted(wanted))} on {cluster}.")
        return redirect("cluster_access", name=cluster.name)
    return render(
        request,
        "clusters/access.html",
        {
            "cluster": cluster,
            "form": form,
            "grants": cluster_grants(cluster),
            "memberships": Membership.objects.filter(workspace=cluster.workspace).select_related(
                "user", "group"
            ),
        },
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def cluster_revoke(request: HttpRequest, name: str) -> HttpResponse:
    """Take every grant on the cluster away from one user or team."""
    cluster = _admin_cluster(request, name)
    kind, holder_id = request.POST.get("kind"), request.POST.get("id", "")
    if kind not in ("user", "team") or not holder_id.isdigit():
        messages.error(request, "Choose whose grants to take away.")
        return redirect("cluster_access", name=cluster.name)
    model = get_user_model() if kind == "user" else Group
    holder = get_object_or_404(model, pk=int(holder_id))
    for action in Action:
        remove_perm(codename(action.value, "cluster"), holder, cluster)
    who = holder.get_username() if kind == "user" else f"team {holder.name}"
    audit.record(request.user, "revoked", cluster, holder=who)
    messages.success(request, f"{who} no longer holds grants on {cluster}.")
    return redirect("cluster_access", name=cluster.name)


@login_required
def team_list(request: HttpRequest) -> HttpResponse:
    """The teams the user may manage; a new team is made with a role in one of the
    workspaces the user administers."""
    admin_of = workspaces_for(request.user, Action.MANAGE)
    form = TeamForm(request.POST or None, workspaces=admin_of)
    if request.method == "POST":
        if not admin_of.exists():
            raise PermissionDenied("Only a workspace Admin may create teams.")
        if form.is_valid():
            workspace = form.cleaned_data["workspace"]
            try:
                with transaction.atomic():
                    team = Group.objects.create(name=form.cleaned_data["name"])
                    workspace.grant(form.cleaned_data["role"], group=team)
            except IntegrityError:  # the same name, made between the check and the insert
                form.add_error("name", "A team with this name already exists.")
        if form.is_valid():
            audit.record(
                request.user,
                "granted",
                workspace,
                member=f"team {team.name}",
                role=form.cleaned_data["role"],
            )
            messages.success(request, f"Team {team.name} created.")
            return redirect("team_detail", pk=team.pk)
    teams = manageable_teams(request.user).order_by("name").prefetch_related("user_set")
    return render(
        request,
        "workspaces/teams.html",
        {"teams": teams, "form": form if admin_of.exists() else None},
        status=400 if form.errors else 200,
    )


@login_required
def team_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A team's members: add by username, remove (POST remove=<user id>)."""
    team = get_object_or_404(manageable_teams(request.user), pk=pk)
    form = TeamMemberForm(request.POST if "username" in request.POST else None)
    if request.method == "POST":
        if form.is_bound and form.is_valid():
            member = form.cleaned_data["username"]
            team.user_set.add(member)
            audit.record(request.user, "added member", team, member=member.get_username())
            messages.success(request, f"{member.get_username()} joined team {team.name}.")
            return redirect("team_detail", pk=team.pk)
        removed = request.POST.get("remove", "")
        if removed.isdigit():
            member = get_object_or_404(team.user_set, pk=int(removed))
            team.user_set.remove(member)
            audit.record(request.user, "removed member", team, member=member.get_username())
            messages.success(request, f"{member.get_username()} left team {team.name}.")
            return redirect("team_detail", pk=team.pk)
    memberships = Membership.objects.filter(group=team).select_related("workspace")
    return render(
        request,
        "workspaces/team_detail.html",
        {
            "team": team,
            "form": form,
            "members": team.user_set.order_by("username"),
            "roles": memberships,
        },
        status=400 if form.errors else 200,
    )
