"""Backup location pages: list, add and edit (with Validate), detail, grants, delete."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from workspaces import audit
from workspaces.access import can, workspaces_for
from workspaces.roles import Action
from workspaces.views.common import fetch, fragment, page_of
from workspaces.views.listing import Filter, Listing

from . import aws
from .forms import SECRET_KEYS, LocationForm
from .grants import GrantForm, grants_of
from .keys import report as keys_report
from .lifecycle import save_location
from .models import BackupLocation
from .validation import validate, validate_and_record


def _location(request: HttpRequest, pk: int, action: str = Action.VIEW) -> BackupLocation:
    """404 when the user may not see it; 403 when they see it but may not do ``action``."""
    queryset = BackupLocation.objects.select_related("workspace")
    return fetch(request, queryset, action, "do that on this location", pk=pk)


def _may_create(user) -> bool:
    return user.is_superuser or workspaces_for(user, Action.MANAGE).exists()


LOCATIONS = Listing(
    search=("name", "bucket", "prefix", "path", "endpoint_url"),
    filters=(
        Filter("status", "Status", "status", tuple(BackupLocation.Status.choices)),
        Filter("provider", "Provider", "provider", tuple(BackupLocation.Provider.choices)),
        Filter("workspace", "Workspace", "workspace__name"),
    ),
    sorts={
        "name": ("Name", "name"),
        "validated": ("Validated longest ago", "last_validated_at"),
        "newest": ("Newest first", "-id"),
    },
    default_sort="name",
)


@login_required
def location_list(request: HttpRequest) -> HttpResponse:
    locations = BackupLocation.objects.restrict(request.user).select_related("workspace")
    locations, listing = LOCATIONS.apply(request, locations)
    context = {**listing, "page": page_of(request, locations)}
    return render(
        request, "locations/list.html", {**context, "can_create": _may_create(request.user)}
    )


def _edit(request: HttpRequest, location: BackupLocation) -> HttpResponse:
    """Shared by add and edit. "Validate" checks without saving; "Save" validates
    and saves only a location that works, unless the user asks to save it as
    Unavailable."""
    form = LocationForm(request.POST or None, instance=location, user=request.user)
    result = None
    if request.method == "POST" and form.is_valid():
        candidate = form.save(commit=False)
        result = validate(candidate)
        if request.POST.get("action") == "save" and (
            result.ok or form.cleaned_data.get("save_unavailable")
        ):
            try:
                with transaction.atomic():
                    saved = save_location(candidate, result, by=request.user)
            except IntegrityError:  # the same name, saved at the same moment
                form.add_error("name", "A location with this name already exists.")
            except ValidationError as exc:  # a location saved meanwhile now overlaps
                form.add_error(None, exc)
            else:
                level = messages.success if result.ok else messages.warning
                level(
                    request,
                    f"Location {saved} saved: {saved.get_status_display()}. {result.message}",
                )
                return redirect(saved)
        elif request.POST.get("action") == "save" and not form.errors:
            form.add_error(None, f"Not saved: the location does not work. {result.message}")
    context = {**_form_context(form, location, form.instance), "result": result}
    if request.htmx and request.POST.get("action") == "validate":
        return render(request, "locations/edit.html#validation", context)
    return render(request, "locations/edit.html", context)


@login_required
def location_create(request: HttpRequest) -> HttpResponse:
    if not _may_create(request.user):
        raise PermissionDenied("Only workspace Admins can add backup locations.")
    return _edit(request, BackupLocation())


@login_required
def location_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _edit(request, _location(request, pk, Action.MANAGE))


@login_required
def location_fields(request: HttpRequest) -> HttpResponse:
    """The provider-specific fields, re-rendered when the provider or the way of
    authenticating changes (HTMX). Nothing secret is ever echoed back."""
    pk = request.GET.get("pk")
    instance = (
        _location(request, int(pk), Action.MANAGE) if pk and pk.isdigit() else BackupLocation()
    )
    skip = ("pk", *SECRET_KEYS, "csrfmiddlewaretoken")
    initial = {key: value for key, value in request.GET.items() if key not in skip}
    form = LocationForm(initial=initial, instance=instance, user=request.user)
    # The policies show the bucket being typed (the instance is never saved here).
    instance.bucket = initial.get("bucket", instance.bucket)
    return render(request, "locations/edit.html#fields", _form_context(form, instance, instance))


def _form_context(form: LocationForm, location: BackupLocation, shown: BackupLocation) -> dict:
    """The edit page's form, and the AWS policies of the location as ``shown`` (typed)."""
    return {
        "form": form,
        "location": location,
        "trust_policy": aws.trust_policy(shown),
        "permissions_policy": aws.permissions_policy(shown),
    }


@login_required
def location_detail(request: HttpRequest, pk: int) -> HttpResponse:
    location = _location(request, pk)
    can_manage = can(request.user, Action.MANAGE, location)
    context = {
        "location": location,
        "can_manage": can_manage,
        "can_validate": can_manage or can(request.user, Action.BACKUP, location),
        "grants": grants_of(location) if can_manage else [],
        "keys": keys_report(location) if can_manage and location.encrypt else [],
        "grant_form": GrantForm(),
    }
    return render(request, "locations/detail.html", context)


@login_required
@require_POST
def location_validate(request: HttpRequest, pk: int) -> HttpResponse:
    """Check a saved location again now and record the result (Operators and Admins)."""
    location = _location(request, pk)
    if not (
        can(request.user, Action.BACKUP, location) or can(request.user, Action.MANAGE, location)
    ):
        raise PermissionDenied("Your role does not allow validating this location.")
    result = validate_and_record(location)
    location.refresh_from_db()
    if request.htmx:
        # The partial keeps its button: a location may be validated again and again.
        context = {"location": location, "can_validate": True}
        return render(request, "locations/detail.html#status", context)
    (messages.success if result.ok else messages.error)(request, result.message)
    return redirect(location)


@login_required
def location_delete(request: HttpRequest, pk: int) -> HttpResponse:
    location = _location(request, pk, Action.MANAGE)
    if request.method == "POST":
        if request.POST.get("confirm_name") != location.name:
            messages.error(request, "Type the location's name to confirm.")
            return redirect("location_delete", pk=location.pk)
        try:
            location.delete()
        except ProtectedError:
            messages.error(
                request,
                f"{location} still holds backups, snapshots or schedules; delete or move them first.",
            )
            return redirect(location)
        audit.record(request.user, "deleted", location, workspace=location.workspace)
        messages.success(
            request, f"Location {location.name} removed. Its stored objects were not touched."
        )
        return redirect("location_list")
    return render(request, "locations/delete.html", {"location": location})


@login_required
@require_POST
def location_grant(request: HttpRequest, pk: int) -> HttpResponse:
    location = _location(request, pk, Action.MANAGE)
    form = GrantForm(request.POST)
    if form.is_valid():
        holder = form.save(location)
        audit.record(
            request.user,
            "granted",
            location,
            member=str(holder),
            access=form.cleaned_data["access"],
        )
        messages.success(request, f"{holder} may now {form.cleaned_data['access']} {location}.")
        if not request.htmx:
            return redirect(location)
        form = GrantForm()
    context = {
        "location": location,
        "can_manage": True,
        "grants": grants_of(location),
        "grant_form": form,
    }
    return render(request, fragment(request, "locations/detail.html", "grants"), context,
                  status=200 if form.is_valid() or request.htmx or not form.is_bound else 400)  # fmt: skip


@login_required
@require_POST
def location_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    location = _location(request, pk, Action.MANAGE)
    from .grants import revoke

    what = revoke(location, request.POST.get("kind", ""), request.POST.get("grant_id", ""))
    if what:
        audit.record(request.user, "revoked", location, member=what)
        messages.success(request, f"Revoked: {what}.")
    return redirect(location)
