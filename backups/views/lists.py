"""Lists of backups, restores and etcd snapshots, filtered by permission."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from workspaces.views.common import page_of

from ..models import Backup, EtcdSnapshot, Restore


def _list(request: HttpRequest, template: str, rows) -> HttpResponse:
    page = page_of(request, rows.restrict(request.user).select_related("created_by"))
    return render(request, template, {"page": page})


@login_required
def backup_list(request: HttpRequest) -> HttpResponse:
    return _list(request, "backups/list.html", Backup.objects.select_related("location"))


@login_required
def restore_list(request: HttpRequest) -> HttpResponse:
    return _list(request, "backups/restore_list.html", Restore.objects)


@login_required
def etcd_snapshot_list(request: HttpRequest) -> HttpResponse:
    return _list(request, "backups/etcd_list.html", EtcdSnapshot.objects.select_related("location"))
