"""A cluster's etcd: its policy, snapshots, the guided restore, and the console's own run of it."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from backups.engine.storage.base import StorageError
from locations.models import BackupLocation
from locations.providers import get_provider
from workspaces import audit
from workspaces.access import can
from workspaces.roles import Action
from workspaces.views.common import fetch, visible_cluster

from .. import cron
from ..charts import line_chart, size_text
from ..etcd_policy import policy_location, snapshot_location
from ..jobs import EtcdRestoreJob, JobRefused, SnapshotJob, start_etcd_restore, start_snapshot
from ..models import EtcdPolicy, EtcdRestore, EtcdSnapshot, Status
from .download import stream_object
from .jobs import job_status


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
        self.fields["location"].queryset = BackupLocation.objects.restrict(user, Action.BACKUP)
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

    def save_by(self, user) -> EtcdPolicy:
        """Save the policy with its next run (the page's and the API's), audited."""
        policy = self.save(commit=False)
        policy.next_run_at = cron.next_run(policy.cron, timezone.now()) if policy.enabled else None
        policy.save()
        audit.record(
            user, "changed", policy, workspace=policy.cluster.workspace,
            cron=policy.cron, keep=policy.keep,
        )  # fmt: skip
        return policy


def _snapshot(request: HttpRequest, pk: int, action: str = Action.VIEW, what="") -> EtcdSnapshot:
    queryset = EtcdSnapshot.objects.select_related("cluster", "location", "workspace", "created_by")
    return fetch(request, queryset, action, what, pk=pk)


def size_chart(snapshots: list[EtcdSnapshot]):
    """An SVG line chart of snapshot size over time (oldest left), or None."""
    done = [s for s in reversed(snapshots) if s.status == Status.COMPLETED and s.size_bytes]
    return line_chart(
        "Snapshot size",
        done,
        when=lambda s: s.created_at,
        value=lambda s: s.size_bytes,
        fmt=size_text,
        name=lambda s: s.name,
    )


@login_required
def cluster_etcd(request: HttpRequest, name: str) -> HttpResponse:
    cluster = visible_cluster(request, name)
    user = request.user
    policy = EtcdPolicy.objects.restrict(user).filter(cluster=cluster)
    policy = policy.select_related("location").first()
    snapshots = list(
        cluster.etcd_snapshots.restrict(user).select_related("location", "created_by")[:50]
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
    cluster = visible_cluster(request, name, Action.MANAGE, "change etcd backups")
    policy = fetch(request, EtcdPolicy.objects, cluster=cluster)
    form = PolicyForm(request.POST, instance=policy, user=request.user)
    if form.is_valid():
        policy = form.save_by(request.user)
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
    cluster = visible_cluster(request, name, Action.SNAPSHOT, "take etcd snapshots")
    try:
        snapshot = start_snapshot(cluster, snapshot_location(cluster), by=request.user)
    except JobRefused as exc:
        messages.error(request, str(exc))
        return redirect("cluster_etcd", name=cluster.name)
    return redirect(snapshot)


@login_required
def etcd_snapshot_detail(request: HttpRequest, pk: int) -> HttpResponse:
    from backups.engine.etcd.runbook import runbook

    from ..engine_inputs import etcd_endpoint, local_target

    snapshot = _snapshot(request, pk)
    may_manage = can(request.user, Action.MANAGE, snapshot)
    done = snapshot.status == Status.COMPLETED
    return render(
        request,
        "backups/etcd_detail.html",
        {
            **SnapshotJob.page_context(request.user, snapshot),
            "steps": runbook(
                snapshot,
                etcd=etcd_endpoint(snapshot.cluster, snapshot.cluster_name),
                download_url=request.build_absolute_uri(
                    reverse("etcd_snapshot_download", args=[snapshot.pk])
                ),
            )
            if done
            else [],
            "can_run_restore": done
            and snapshot.cluster is not None
            and request.user.is_superuser
            and may_manage
            and local_target(snapshot.cluster) is not None,
            "can_delete": snapshot.is_done and may_manage,
            "can_download": can(request.user, Action.DOWNLOAD, snapshot),
            "restores": snapshot.restores.restrict(request.user)[:5],
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
    snapshot = _snapshot(request, pk, Action.MANAGE, "delete etcd snapshots")
    if request.method == "POST":
        if snapshot.object_key:
            try:
                with get_provider(snapshot.location) as provider:
                    provider.delete(snapshot.object_key)
            except StorageError as exc:
                messages.error(request, f"Not deleted: {exc}")
                return redirect(snapshot)
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
    snapshot = _snapshot(request, pk, Action.MANAGE, "restore etcd")
    if not request.user.is_superuser:
        raise PermissionDenied("Only a superuser may restore etcd on the console's own hosts.")
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
    restore = fetch(request, EtcdRestore.objects.select_related("snapshot", "created_by"), pk=pk)
    return render(
        request,
        "backups/etcd_restore.html",
        EtcdRestoreJob.page_context(request.user, restore),
    )
