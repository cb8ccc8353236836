"""The console's metrics, read from the database at each scrape.

Every family is one or two aggregate queries, so a scrape costs the same number of
queries whatever the number of jobs. Labels are bounded: job kind, status,
workspace, cluster, location, worker node; never a backup's name.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, DurationField, ExpressionWrapper, F, Max, Q, Sum
from django.utils import timezone
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

from backups.models import Backup, EtcdRestore, EtcdSnapshot, Restore, Status
from locations.models import BackupLocation

KINDS = {
    "backup": Backup,
    "restore": Restore,
    "etcd_snapshot": EtcdSnapshot,
    "etcd_restore": EtcdRestore,
}
FINAL = [Status.COMPLETED, Status.PARTIALLY_FAILED, Status.FAILED, Status.CANCELLED]
DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200)
SIZE_BUCKETS = tuple(2**n for n in range(20, 41, 2))  # 1 MiB .. 1 TiB


def _ts(value) -> float:
    return value.timestamp() if value else 0.0


class ConsoleCollector:
    def collect(self):
        yield from self._jobs()
        yield from self._durations()
        yield from self._sizes()
        yield from self._last_good()
        yield from self._locations()
        yield from self._workers()

    def _jobs(self):
        finished = CounterMetricFamily(
            "palette_jobs", "Jobs that ended, by kind and outcome", labels=["kind", "status"]
        )
        queued = GaugeMetricFamily(
            "palette_jobs_queued", "Jobs waiting for a worker", labels=["kind"]
        )
        running = GaugeMetricFamily(
            "palette_jobs_running", "Jobs a worker runs now", labels=["kind"]
        )
        for kind, model in KINDS.items():
            counts = dict(model.objects.values_list("status").annotate(n=Count("pk")).order_by())
            for status in FINAL:
                finished.add_metric([kind, status], counts.get(status, 0))
            queued.add_metric([kind], counts.get(Status.PENDING, 0))
            running.add_metric([kind], counts.get(Status.RUNNING, 0))
        yield from (finished, queued, running)

    def _durations(self):
        family = HistogramMetricFamily(
            "palette_job_duration_seconds", "How long finished jobs ran", labels=["kind"]
        )
        took = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
        for kind, model in KINDS.items():
            rows = model.objects.filter(status__in=FINAL, started_at__isnull=False,
                                        finished_at__isnull=False)  # fmt: skip
            buckets = {
                f"le{b}": Count(
                    "pk", filter=Q(finished_at__lte=F("started_at") + timedelta(seconds=b))
                )
                for b in DURATION_BUCKETS
            }
            agg = rows.aggregate(total=Count("pk"), seconds=Sum(took), **buckets)
            family.add_metric(
                [kind],
                [(str(float(b)), agg[f"le{b}"]) for b in DURATION_BUCKETS]
                + [("+Inf", agg["total"])],
                (agg["seconds"] or timedelta()).total_seconds(),
            )
        yield family

    def _sizes(self):
        family = HistogramMetricFamily(
            "palette_job_size_bytes", "Stored size of finished backups and etcd snapshots",
            labels=["kind"],
        )  # fmt: skip
        for kind, model in (("backup", Backup), ("etcd_snapshot", EtcdSnapshot)):
            rows = model.objects.filter(status__in=FINAL, size_bytes__isnull=False)
            buckets = {f"le{b}": Count("pk", filter=Q(size_bytes__lte=b)) for b in SIZE_BUCKETS}
            agg = rows.aggregate(total=Count("pk"), size=Sum("size_bytes"), **buckets)
            family.add_metric(
                [kind],
                [(str(float(b)), agg[f"le{b}"]) for b in SIZE_BUCKETS] + [("+Inf", agg["total"])],
                float(agg["size"] or 0),
            )
        yield family

    def _last_good(self):
        for kind, model in (("backup", Backup), ("etcd_snapshot", EtcdSnapshot)):
            family = GaugeMetricFamily(
                f"palette_last_successful_{kind}_timestamp_seconds",
                f"When the newest completed {kind.replace('_', ' ')} of each cluster finished",
                labels=["workspace", "cluster"],
            )
            rows = (
                model.objects.filter(status=Status.COMPLETED, finished_at__isnull=False)
                .values_list("workspace__slug", "cluster_name")
                .annotate(newest=Max("finished_at"))
                .order_by()
            )
            for workspace, cluster, newest in rows:
                family.add_metric([workspace, cluster], _ts(newest))
            yield family

    def _locations(self):
        family = GaugeMetricFamily(
            "palette_location_available",
            "1 when the location's last validation passed, 0 when it failed or never ran",
            labels=["location", "provider"],
        )
        checked = GaugeMetricFamily(
            "palette_location_validated_timestamp_seconds", "When each location was last validated",
            labels=["location"],
        )  # fmt: skip
        for name, provider, status, when in BackupLocation.objects.values_list(
            "name", "provider", "status", "last_validated_at"
        ):
            family.add_metric(
                [name, provider], 1.0 if status == BackupLocation.Status.AVAILABLE else 0.0
            )
            checked.add_metric([name], _ts(when))
        yield from (family, checked)

    def _workers(self):
        """The newest heartbeat each worker node wrote on a job row in the last day
        (the process id is dropped from the label: it changes at every restart)."""
        family = GaugeMetricFamily(
            "palette_worker_heartbeat_timestamp_seconds",
            "The newest heartbeat each worker wrote on a job",
            labels=["worker"],
        )
        since = timezone.now() - timedelta(days=1)
        newest: dict[str, float] = {}
        for model in KINDS.values():
            rows = (
                model.objects.filter(heartbeat_at__gte=since)
                .exclude(worker="")
                .values_list("worker")
                .annotate(beat=Max("heartbeat_at"))
                .order_by()
            )
            for worker, beat in rows:
                node = worker.split(" pid ", 1)[0][:100]
                newest[node] = max(newest.get(node, 0.0), _ts(beat))
        for node, beat in sorted(newest.items()):
            family.add_metric([node], beat)
        yield family
