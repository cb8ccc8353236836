"""A workspace's notification rules and delivery log: for its admins only."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from workspaces import audit
from workspaces.roles import Action
from workspaces.views.common import visible_workspace

from .events import notify
from .forms import RuleForm
from .models import TEST_EVENT, Delivery, Rule
from .payload import document

SHOWN_DELIVERIES = 50
WHAT = "manage this workspace's notifications"


def _workspace(request: HttpRequest, slug: str):
    return visible_workspace(request, slug, Action.MANAGE, WHAT)


def _page(request, workspace, form, status: int = 200, created=None) -> HttpResponse:
    deliveries = Delivery.objects.filter(rule__workspace=workspace).select_related("rule")
    context = {
        "workspace": workspace,
        "rules": workspace.notification_rules.all(),
        "deliveries": deliveries[:SHOWN_DELIVERIES],
        "form": form,
        "created": created,
    }
    return render(request, "notifications/rules.html", context, status=status)


@login_required
def rule_list(request: HttpRequest, slug: str) -> HttpResponse:
    workspace = _workspace(request, slug)
    if request.method != "POST":
        return _page(request, workspace, RuleForm(workspace=workspace))
    form = RuleForm(request.POST, workspace=workspace)
    if not form.is_valid():
        return _page(request, workspace, form, status=400)
    try:
        with transaction.atomic():
            form.instance.created_by = request.user
            rule = form.save()
            audit.record(request.user, "created notification rule", rule, channel=rule.channel)
    except IntegrityError:  # the same name saved by a second request in between
        form.add_error("name", "This workspace already has a rule with this name.")
        return _page(request, workspace, form, status=400)
    # The signing secret is shown on this one answer, never again.
    return _page(request, workspace, RuleForm(workspace=workspace), status=201, created=rule)


def _rule(request: HttpRequest, slug: str, pk: int) -> Rule:
    return get_object_or_404(Rule, pk=pk, workspace=_workspace(request, slug))


@login_required
@require_POST
def rule_test(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """Send a test message through this rule now, whatever events it asks for."""
    rule = _rule(request, slug, pk)
    subject = {"kind": "test", "rule": rule.name, "by": request.user.get_username()}
    summary = f"Test message from the backup console for rule {rule.name}"
    notify(
        rule.workspace, TEST_EVENT, document(TEST_EVENT, rule.workspace, subject, summary), [rule]
    )
    messages.success(request, "A test message is on its way; its delivery shows below.")
    return redirect("notification_rules", slug=slug)


@login_required
@require_POST
def rule_delete(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    rule = _rule(request, slug, pk)
    with transaction.atomic():
        audit.record(request.user, "deleted notification rule", rule)
        rule.delete()
    messages.success(request, f"Rule {rule.name} is deleted.")
    return redirect("notification_rules", slug=slug)
