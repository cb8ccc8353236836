"""Lists and details of backups, restores and etcd snapshots, filtered by permission."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from workspaces.views.common import page_of

from ..models import Backup, EtcdSnapshot, Restore


@login_required
def backup_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "backups/list.html",
        {
            "page": page_of(
                request,
                Backup.objects.restrict(request.user).select_related("location", "created_by"),
            )
        },
    )


@login_required
def restore_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "backups/restore_list.html",
        {
            "page": page_of(
                request, Restore.objects.restrict(request.user).select_related("created_by")
            )
        },
    )


@login_required
def etcd_snapshot_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "backups/etcd_list.html",
        {
            "page": page_of(
                request,
                EtcdSnapshot.objects.restrict(request.user).select_related(
                    "location", "created_by"
                ),
            )
        },
    )
