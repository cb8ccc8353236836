"""Backup location pages. Adding and validating locations comes with the providers."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from workspaces.access import locations_q
from workspaces.roles import Action
from workspaces.views.common import page_of

from .models import BackupLocation


@login_required
def location_list(request: HttpRequest) -> HttpResponse:
    locations = BackupLocation.objects.filter(locations_q(request.user)).select_related("workspace")
    return render(request, "locations/list.html", {"page": page_of(request, locations)})


@login_required
def location_detail(request: HttpRequest, pk: int) -> HttpResponse:
    location = get_object_or_404(
        BackupLocation.objects.filter(locations_q(request.user, Action.VIEW)).select_related(
            "workspace"
        ),
        pk=pk,
    )
    return render(request, "locations/detail.html", {"location": location})
