"""Streaming an object from a location to the browser, never loading it whole."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect

from backups.engine.storage.base import StorageError
from locations.providers import get_provider

CHUNK = 1024 * 1024


def stream_object(
    request: HttpRequest, job, key: str, filename: str, content_type: str
) -> HttpResponse:
    """The object at ``key`` of ``job.location`` as an attachment; on a storage
    error, back to the job's page with the reason."""
    provider = get_provider(job.location)
    try:
        stream = provider.open_read(key)
    except StorageError as exc:
        provider.close()
        messages.error(request, f"Cannot download {filename}: {exc}")
        return redirect(job)

    def chunks():
        try:
            while chunk := stream.read(CHUNK):
                yield chunk
        finally:
            stream.close()
            provider.close()

    response = StreamingHttpResponse(chunks(), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    if job.size_bytes:
        response["Content-Length"] = str(job.size_bytes)
    return response
