"""Lists and details of backups, restores and etcd snapshots, filtered by permission."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from workspaces.access import operation_q
from workspaces.views.common import page_of

from ..models import Backup, EtcdSnapshot, Restore


def _backups(user):
    return Backup.objects.filter(operation_q(user)).select_related("location", "created_by")


def _restores(user):
    return Restore.objects.filter(operation_q(user, cluster_field="target_cluster")).select_related(
        "created_by"
    )


def _snapshots(user):
    return EtcdSnapshot.objects.filter(operation_q(user)).select_related("location", "created_by")


@login_required
def backup_list(request: HttpRequest) -> HttpResponse:
    return render(request, "backups/list.html", {"page": page_of(request, _backups(request.user))})


@login_required
def restore_list(request: HttpRequest) -> HttpResponse:
    return render(
        request, "backups/restore_list.html", {"page": page_of(request, _restores(request.user))}
    )


@login_required
def etcd_snapshot_list(request: HttpRequest) -> HttpResponse:
    return render(
        request, "backups/etcd_list.html", {"page": page_of(request, _snapshots(request.user))}
    )
