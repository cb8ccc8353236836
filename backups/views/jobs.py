"""What every job's page shares: the polled status fragment and the Cancel button."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseStopPolling

from workspaces.views.common import require

from ..jobs import JOBS, JobRefused


def _job_and_row(request: HttpRequest, kind: str, pk: int):
    job = JOBS.get(kind)
    if job is None:
        raise Http404("No such kind of job.")
    rows = job.model.objects.restrict(request.user).select_related(*job.related, "created_by")
    return job, get_object_or_404(rows, pk=pk)


@login_required
def job_status(request: HttpRequest, pk: int, kind: str) -> HttpResponse:
    """The progress fragment, polled every second until the job ends."""
    job, row = _job_and_row(request, kind, pk)
    response = render(request, f"{job.template}#progress", job.page_context(request.user, row))
    if row.is_done and request.htmx:
        return HttpResponseStopPolling(response.content)
    return response


@login_required
@require_POST
def job_cancel(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    job, row = _job_and_row(request, kind, pk)
    require(request.user, job.start_action, job.scope(row), f"cancel this {job.noun}")
    try:
        messages.success(request, job.cancel(row, by=request.user))
    except JobRefused as exc:
        messages.error(request, str(exc))
    return redirect(row)
