"""A cluster's etcd: its policy, snapshots, the guided restore, and the console's own run of it."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from locations.models import BackupLocation
from locations.providers import get_provider
from locations.providers.base import StorageError
from workspaces import audit
from workspaces.access import can, cluster_q, locations_q, operation_q
from workspaces.models import Cluster
from workspaces.roles import Action
from workspaces.views.common import require

from .. import cron
from ..engine.etcd import can_restore_locally, runbook
from ..etcd_policy import policy_location
from ..jobs import EtcdRestoreJob, JobRefused, SnapshotJob, start_etcd_restore, start_snapshot
from ..models import EtcdPolicy, EtcdRestore, EtcdSnapshot, Status
from .download import stream_object
from .jobs import job_status

CHART_WIDTH, CHART_HEIGHT = 600, 120


class PolicyForm(forms.ModelForm):
    class Meta:
        model = EtcdPolicy
        fields = ["enabled", "cron", "keep", "location"]
        labels = {"cron": "Schedule (cron)", "keep": "Copies to keep"}
        help_texts = {
            "cron": "Default hourly: 0 */1 * * *",
            "location": "Empty: the workspace's default location.",
        }

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["location"].queryset = BackupLocation.objects.filter(
            locations_q(user, Action.BACKUP)
        )
        self.fields["location"].required = False

    def clean_cron(self) -> str:
        expression = self.cleaned_data["cron"].strip()
        if problem := cron.problem(expression):
            raise forms.ValidationError(problem)
        return expression

    def clean_keep(self) -> int:
        keep = self.cleaned_data["keep"]
        if keep < 1:
            raise forms.ValidationError("Keep at least one copy.")
        return keep


def _cluster(request: HttpRequest, name: str) -> Cluster:
    queryset = Cluster.objects.filter(cluster_q(request.user, Action.VIEW)).select_related(
        "workspace"
    )
    return get_object_or_404(queryset, name=name)


def _snapshot(request: HttpRequest, pk: int) -> EtcdSnapshot:
    queryset = EtcdSnapshot.objects.filter(operation_q(request.user)).select_related(
        "cluster", "location", "workspace", "created_by"
    )
    return get_object_or_404(queryset, pk=pk)


def size_chart(snapshots: list[EtcdSnapshot]) -> dict:
    """Points of an inline SVG line chart of snapshot size over time (oldest left)."""
    done = [s for s in reversed(snapshots) if s.status == Status.COMPLETED and s.size_bytes]
    if len(done) < 2:
        return {}
    low, high = min(s.size_bytes for s in done), max(s.size_bytes for s in done)
    span = max(high - low, 1)
    step = CHART_WIDTH / (len(done) - 1)
    points = [
        (
            round(i * step, 1),
            round(CHART_HEIGHT - 10 - (s.size_bytes - low) / span * (CHART_HEIGHT - 20), 1),
        )
        for i, s in enumerate(done)
    ]
    return {
        "points": " ".join(f"{x},{y}" for x, y in points),
        "dots": [(x, y, s) for (x, y), s in zip(points, done, strict=True)],
        "low": low,
        "high": high,
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "first": done[0].created_at,
        "last": done[-1].created_at,
    }


@login_required
def cluster_etcd(request: HttpRequest, name: str) -> HttpResponse:
    cluster = _cluster(request, name)
    policy = EtcdPolicy.objects.filter(cluster=cluster).select_related("location").first()
    snapshots = list(
        EtcdSnapshot.objects.filter(cluster=cluster).select_related("location", "created_by")[:50]
    )
    can_manage = can(request.user, Action.MANAGE, cluster)
    return render(
        request,
        "backups/cluster_etcd.html",
        {
            "cluster": cluster,
            "policy": policy,
            "policy_location": policy_location(cluster) if cluster.has_etcd else None,
            "policy_form": PolicyForm(instance=policy, user=request.user)
            if policy and can_manage
            else None,
            "snapshots": snapshots,
            "chart": size_chart(snapshots),
            "can_snapshot": cluster.has_etcd and can(request.user, Action.SNAPSHOT, cluster),
            "can_manage": can_manage,
        },
    )


@login_required
@require_POST
def etcd_policy_edit(request: HttpRequest, name: str) -> HttpResponse:
    cluster = _cluster(request, name)
    require(request.user, Action.MANAGE, cluster, "change etcd backups")
    policy = get_object_or_404(EtcdPolicy, cluster=cluster)
    form = PolicyForm(request.POST, instance=policy, user=request.user)
    if form.is_valid():
        policy = form.save(commit=False)
        policy.next_run_at = (
            cron.next_runs(policy.cron, timezone.now(), 1)[0] if policy.enabled else None
        )
        policy.save()
        audit.record(
            request.user,
            "changed",
            policy,
            workspace=cluster.workspace,
            cron=policy.cron,
            keep=policy.keep,
        )
        messages.success(
            request, f"etcd backups of {cluster}: {'on' if policy.enabled else 'off'}."
        )
    else:
        errors = "; ".join(f"{field}: {' '.join(e)}" for field, e in form.errors.items())
        messages.error(request, f"Not saved: {errors}")
    return redirect("cluster_etcd", name=cluster.name)


@login_required
@require_POST
def etcd_snapshot_create(request: HttpRequest, name: str) -> HttpResponse:
    cluster = _cluster(request, name)
    require(request.user, Action.SNAPSHOT, cluster, "take etcd snapshots")
    location = policy_location(cluster)
    try:
        if location is None:
            raise JobRefused(
                "Set a location on the etcd policy, or a default location for the workspace."
            )
        snapshot = start_snapshot(cluster, location, by=request.user)
    except JobRefused as exc:
        messages.error(request, str(exc))
        return redirect("cluster_etcd", name=cluster.name)
    return redirect(snapshot)


@login_required
def etcd_snapshot_detail(request: HttpRequest, pk: int) -> HttpResponse:
    snapshot = _snapshot(request, pk)
    scope = snapshot.cluster or snapshot.workspace
    done = snapshot.status == Status.COMPLETED
    return render(
        request,
        "backups/etcd_detail.html",
        {
            **SnapshotJob.page_context(request.user, snapshot),
            "steps": runbook(
                snapshot,
                download_url=request.build_absolute_uri(
                    reverse("etcd_snapshot_download", args=[snapshot.pk])
                ),
            )
            if done
            else [],
            "can_run_restore": done
            and snapshot.cluster is not None
            and can(request.user, Action.MANAGE, scope)
            and can_restore_locally(snapshot.cluster),
            "can_delete": snapshot.is_done and can(request.user, Action.MANAGE, scope),
            "restores": snapshot.restores.all()[:5],
        },
    )


@login_required
def etcd_snapshot_download(request: HttpRequest, pk: int) -> HttpResponse:
    snapshot = _snapshot(request, pk)
    return stream_object(
        request, snapshot, snapshot.object_key, f"{snapshot.name}.db", "application/octet-stream"
    )


@login_required
def etcd_snapshot_delete(request: HttpRequest, pk: int) -> HttpResponse:
    snapshot = _snapshot(request, pk)
    require(
        request.user, Action.MANAGE, snapshot.cluster or snapshot.workspace, "delete etcd snapshots"
    )
    if request.method == "POST":
        if snapshot.object_key:
            provider = get_provider(snapshot.location)
            try:
                provider.delete(snapshot.object_key)
            except StorageError as exc:
                messages.error(request, f"Not deleted: {exc}")
                return redirect(snapshot)
            finally:
                provider.close()
        audit.record(request.user, "deleted", snapshot)
        snapshot.delete()
        messages.success(request, f"Snapshot {snapshot.name} deleted from {snapshot.location}.")
        return (
            redirect("cluster_etcd", name=snapshot.cluster_name)
            if snapshot.cluster_id
            else redirect("etcd_snapshot_list")
        )
    return render(request, "backups/etcd_delete.html", {"snapshot": snapshot})


@login_required
@require_POST
def etcd_restore_create(request: HttpRequest, pk: int) -> HttpResponse:
    """Destructive: needs the Admin role and the cluster's name typed to confirm."""
    snapshot = _snapshot(request, pk)
    require(request.user, Action.MANAGE, snapshot.cluster or snapshot.workspace, "restore etcd")
    if request.POST.get("confirm_name") != snapshot.cluster_name:
        messages.error(request, "Type the cluster's name to confirm the restore.")
        return redirect(snapshot)
    try:
        restore = start_etcd_restore(snapshot, by=request.user)
    except JobRefused as exc:
        messages.error(request, str(exc))
        return redirect(snapshot)
    return redirect(restore)


@login_required
def etcd_restore_detail(request: HttpRequest, pk: int) -> HttpResponse:
    if request.htmx:
        return job_status(request, pk, kind=EtcdRestoreJob.kind)
    restore = get_object_or_404(
        EtcdRestore.objects.filter(operation_q(request.user)).select_related(
            "snapshot", "created_by"
        ),
        pk=pk,
    )
    return render(
        request,
        "backups/etcd_restore.html",
        EtcdRestoreJob.page_context(request.user, restore),
    )
