"""Schedules: create (of a cluster or a whole workspace), read, change, delete,
pause and resume, run now. Through the page's ScheduleForm."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from backups.forms import ScheduleForm
from backups.models import Schedule
from backups.scheduling import run_now, set_paused
from backups.views.schedules import hide_skips
from locations.models import BackupLocation
from workspaces import audit
from workspaces.models import Workspace
from workspaces.roles import Action

from .. import filters, forms
from .. import serializers as api_serializers
from .backups import cluster_named, options, ttl
from .base import Scoped

SCHEDULE_BODY = inline_serializer(
    "ScheduleWrite",
    {
        "cluster": serializers.CharField(
            required=False, help_text="A cluster's name (on create; or give workspace)"
        ),
        "workspace": serializers.CharField(
            required=False, help_text="A workspace's slug: every healthy cluster of it"
        ),
        "prefix": serializers.CharField(required=False, default="scheduled"),
        "preset": serializers.ChoiceField(choices=Schedule.Preset.values, required=False),
        "cron": serializers.CharField(required=False, help_text="With preset custom"),
        "location": serializers.CharField(required=False, help_text="The location's name"),
        "paused": serializers.BooleanField(required=False),
        "ttl": ttl(),
        **options(),
    },
)
FORM_FIELDS = set(ScheduleForm.base_fields)
DEFAULTS = {
    "prefix": "scheduled",
    "preset": Schedule.Preset.WEEKLY.value,
    "ttl": "720h",
    "cluster_resources": "auto",
}


class ScheduleViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, Scoped
):
    model = Schedule
    related = ("workspace", "cluster", "location")
    serializer_class = api_serializers.ScheduleSerializer
    filterset_class = filters.ScheduleFilter
    ordering_fields = ["prefix", "next_run_at", "created_at"]
    ordering = ["prefix", "id"]
    search_fields = ["prefix"]

    @extend_schema(request=SCHEDULE_BODY, responses={201: api_serializers.ScheduleSerializer})
    def create(self, request):
        """A schedule of one cluster (``cluster``) or of a whole workspace (``workspace``)."""
        data = forms.body(request)
        forms.unknown_fields(data, FORM_FIELDS | {"cluster", "workspace"})
        if ("cluster" in data) == ("workspace" in data):
            raise exceptions.ValidationError(
                {"non_field_errors": ["Give either cluster or workspace."]}
            )
        if "cluster" in data:
            cluster = cluster_named(request.user, data)
            self.require(Action.MANAGE, cluster, "create schedules")
            schedule = Schedule(workspace=cluster.workspace, cluster=cluster)
        else:
            workspace = self._workspace(data["workspace"])
            self.require(Action.MANAGE, workspace, "create schedules")
            schedule = Schedule(workspace=workspace)
        schedule.created_by = request.user
        data = {k: v for k, v in data.items() if k not in ("cluster", "workspace")}
        schedule = self._save(schedule, {**DEFAULTS, **data}, "created")
        return Response(self.get_serializer(schedule).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=SCHEDULE_BODY)
    def update(self, request, pk=None):
        """Replace the schedule's settings (what is left out takes the form's default)."""
        return self._change(request, partial=False)

    @extend_schema(request=SCHEDULE_BODY)
    def partial_update(self, request, pk=None):
        """Change only the settings given."""
        return self._change(request, partial=True)

    def destroy(self, request, pk=None):
        """Delete the schedule; the backups it made are kept until they expire."""
        schedule = self.get_object()
        self.require(Action.MANAGE, schedule, "change schedules")
        audit.record(request.user, "deleted", schedule)
        schedule.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        """Stop firing until resumed."""
        return self._pause(True)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        """Fire again from now on (missed runs are not made up)."""
        return self._pause(False)

    @extend_schema(request=None, responses={201: api_serializers.RunSerializer})
    @action(detail=True, methods=["post"])
    def run(self, request, pk=None):
        """Fire the schedule now (its timetable is unchanged): whoever may back up
        what it backs up. Answers the run: the backups it started, what it skipped."""
        schedule = self.get_object()
        self.require(Action.BACKUP, schedule, "run this schedule")
        run = run_now(schedule, request.user)
        hide_skips(request.user, [run])
        backups = run.backups.restrict(request.user).order_by("id")
        data = api_serializers.RunSerializer(run, context={"backups": backups}).data
        return Response(data, status=status.HTTP_201_CREATED)

    def _pause(self, paused: bool) -> Response:
        schedule = self.get_object()
        self.require(Action.MANAGE, schedule, "change schedules")
        if schedule.paused != paused:
            set_paused(schedule, paused, self.request.user)
        return Response(self.get_serializer(schedule).data)

    def _change(self, request, partial: bool) -> Response:
        schedule = self.get_object()
        self.require(Action.MANAGE, schedule, "change schedules")
        data = forms.body(request)
        forms.unknown_fields(data, FORM_FIELDS)
        if partial:
            current = ScheduleForm(
                instance=schedule, user=request.user, workspace=schedule.workspace
            )
            data = {**current.initial, **data}
        else:
            data = {**DEFAULTS, **data}
        schedule = self._save(schedule, data, "changed")
        return Response(self.get_serializer(schedule).data)

    def _save(self, schedule: Schedule, data: dict, verb: str) -> Schedule:
        user = self.request.user
        usable = BackupLocation.objects.restrict(user, Action.BACKUP)
        values = forms.as_form_data(data, ScheduleForm, names={"location": usable})
        form = ScheduleForm(values, instance=schedule, user=user, workspace=schedule.workspace)
        if not form.is_valid():
            raise forms.invalid(form)
        schedule = form.save(timezone.now())
        audit.record(user, verb, schedule, cron=schedule.expression)
        return self.get_queryset().get(pk=schedule.pk)

    def _workspace(self, slug) -> Workspace:
        found = Workspace.objects.restrict(self.request.user).filter(slug=slug).first()
        if found is None:
            raise exceptions.ValidationError(
                {"workspace": [f"No workspace {slug!r} that you may see."]}
            )
        return found
