"""The API writes through the pages' forms, so both say the same things.

A JSON body is turned into what the form would have received from the browser
(lists of names become the comma-separated text the pages' fields take, object
names become the primary keys of the choices the form offers), then the form
validates it. Its messages come back field by field as a 400.
"""

from __future__ import annotations

from django import forms
from django.db.models import QuerySet
from rest_framework import exceptions, views

from backups.jobs import JobRefused


class Conflict(exceptions.APIException):
    """The request is well-formed but the job cannot start now (``JobRefused``)."""

    status_code = 409
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


def exception_handler(exc, context):
    """DRF's handler, with a job that cannot start (``JobRefused``) answered 409."""
    if isinstance(exc, JobRefused):
        exc = Conflict(str(exc))
    return views.exception_handler(exc, context)


def body(request) -> dict:
    """The request's JSON object (a list or a scalar is a 400, not a crash)."""
    data = request.data
    if not hasattr(data, "get"):
        raise exceptions.ValidationError({"non_field_errors": ["Send a JSON object."]})
    found = dict(data.items()) if hasattr(data, "items") else {}
    if _has_nul(found):
        # PostgreSQL cannot store or even compare such a string (SQLite can): refuse
        # it alike everywhere, as Django's form fields do.
        raise exceptions.ValidationError({"non_field_errors": ["Null characters are not allowed."]})
    return found


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def as_form_data(data: dict, form_class: type[forms.Form], names: dict | None = None) -> dict:
    """``data`` as the form's fields expect it.

    ``names`` maps a field to the queryset its value (an object's name) is looked
    up in; a name not found there is passed on as is, and the form then refuses
    it with its own "Select a valid choice" message.
    """
    fields = form_class.base_fields
    converted = {}
    for key, value in data.items():
        field = fields.get(key)
        if field is None:
            continue
        if names and key in names and isinstance(value, str):
            value = _pk_of(names[key], value)
        if isinstance(field, forms.MultipleChoiceField):
            value = value if isinstance(value, list) else [value]
            converted[key] = [str(v) for v in value]
        elif isinstance(field, forms.BooleanField):
            converted[key] = "on" if value is True else ""
            if value not in (True, False, None):
                raise exceptions.ValidationError({key: ["Must be true or false."]})
        elif isinstance(value, list):
            if not all(isinstance(v, str) for v in value):
                raise exceptions.ValidationError({key: ["Must be a list of names."]})
            converted[key] = ",".join(value)
        elif isinstance(value, dict):
            converted[key] = ",".join(f"{k}={v}" for k, v in value.items())
        elif value is None:
            converted[key] = ""
        elif isinstance(value, (str, int)):
            converted[key] = str(value)
        else:
            raise exceptions.ValidationError({key: ["Not a value this field takes."]})
    return converted


def _pk_of(queryset: QuerySet | tuple[QuerySet, str], name: str):
    """The pk of the object called ``name`` (``(queryset, "slug")`` looks up a slug)."""
    queryset, field = queryset if isinstance(queryset, tuple) else (queryset, "name")
    pk = queryset.filter(**{field: name}).values_list("pk", flat=True).first()
    return pk if pk is not None else name


def unknown_fields(data: dict, allowed) -> None:
    """A field the endpoint does not take is a 400 (a typo must not be ignored)."""
    extra = sorted(set(data) - set(allowed))
    if extra:
        raise exceptions.ValidationError({name: ["Not a field of this request."] for name in extra})


def invalid(form: forms.Form) -> exceptions.ValidationError:
    """The form's errors as the API's 400: ``{"field": ["message"]}``, with the
    form-wide ones under ``non_field_errors``."""
    errors = {
        ("non_field_errors" if name == "__all__" else name): list(messages)
        for name, messages in form.errors.items()
    }
    return exceptions.ValidationError(errors)
