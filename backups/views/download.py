"""Streaming an object from a location to the browser, never loading it whole.

An archive or an etcd snapshot holds every Secret in clear, so a download needs
the ``download`` action (Operators and Admins), leaves an audit event, and tells
browsers and proxies not to keep a copy.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.utils.http import content_disposition_header

from backups.engine.storage.base import StorageError
from locations.providers import get_provider
from workspaces import audit
from workspaces.roles import Action
from workspaces.views.common import require

CHUNK = 1024 * 1024


def stream_object(
    request: HttpRequest, job, key: str, filename: str, content_type: str
) -> HttpResponse:
    """The object at ``key`` of ``job.location`` as an attachment; on a storage
    error, back to the job's page with the reason."""
    try:
        return download(request.user, job, key, filename, content_type)
    except StorageError as exc:
        messages.error(request, f"Cannot download {filename}: {exc}")
        return redirect(job)


def download(user, job, key: str, filename: str, content_type: str) -> StreamingHttpResponse:
    """The download itself, for the pages and the API. Raises StorageError when the
    store cannot give the object, PermissionDenied without the download action.

    ``job`` is a backup or an etcd snapshot the user may already see (fetched
    through a permission-filtered queryset: 404 otherwise); without the download
    action on its cluster (or its workspace once the cluster is gone) this is 403.
    """
    require(user, Action.DOWNLOAD, job.cluster or job.workspace, "download it")
    provider = get_provider(job.location)
    try:
        stream = provider.open_read(key)
    except StorageError:
        provider.close()
        raise
    audit.record(user, "downloaded", job, file=filename)

    def chunks():
        try:
            while chunk := stream.read(CHUNK):
                yield chunk
        finally:
            stream.close()
            provider.close()

    response = StreamingHttpResponse(chunks(), content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(True, filename)
    response["Cache-Control"] = "no-store"
    if job.size_bytes:
        response["Content-Length"] = str(job.size_bytes)
    return response
