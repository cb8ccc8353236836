"""manage.py backup CLUSTER --location L [...] [--wait]: prints the name, then the final phase."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from backups.engine.words import counted
from backups.forms import SelectorField
from backups.jobs import JobRefused, run_and_wait, start_backup
from backups.models import BackupOptions, ClusterResources
from backups.naming import parse_duration, parse_volume_policy, split_list
from locations.models import BackupLocation
from palette_site.command_support import named, parsed
from workspaces.models import Cluster

PHASES = {
    "completed": "Completed",
    "partially_failed": "PartiallyFailed",
    "failed": "Failed",
    "cancelled": "Cancelled",
}


FIRST_ERRORS = 5


def error_lines(log: str, shown: int = FIRST_ERRORS) -> list[str]:
    """The first ERROR lines of a job's log, without their timestamps."""
    found = [line.split(" ", 1)[-1] for line in log.splitlines() if " ERROR " in line]
    return [line.removeprefix("ERROR").strip() for line in found[:shown]]


class Command(BaseCommand):
    help = "Back up a cluster to a location. Prints the backup's name (and with --wait its final phase)."

    def add_arguments(self, parser):
        parser.add_argument("cluster")
        parser.add_argument("--location", required=True)
        parser.add_argument("--name", default="", help="Default: manual-<cluster>-<timestamp>")
        parser.add_argument("--include-namespaces", default="", help="a,b (default: all)")
        parser.add_argument("--exclude-namespaces", default="")
        parser.add_argument(
            "--include-resources", default="", help="e.g. deployments.apps,configmaps"
        )
        parser.add_argument("--exclude-resources", default="")
        parser.add_argument("--cluster-resources", choices=ClusterResources.values, default="auto")
        parser.add_argument("--selector", default="", help="Label selector, e.g. app=shop")
        parser.add_argument("--ttl", default="720h", help="How long to keep it, e.g. 720h")
        parser.add_argument(
            "--include-disks", action="store_true", help="Volume data too (snapshots, copies)"
        )
        parser.add_argument(
            "--volume-mode", choices=BackupOptions.VolumeMode.values, default="auto",
            help="With --include-disks: auto (default), snapshot_and_copy, snapshot or copy",
        )  # fmt: skip
        parser.add_argument(
            "--volume-policy", default="", help="Per storage class: class=skip|snapshot|copy,..."
        )
        parser.add_argument(
            "--wait", action="store_true", help="Wait for the end; exit 1 unless Completed"
        )

    def handle(self, *args, **o):
        cluster = named(Cluster, o["cluster"], "cluster")
        location = named(BackupLocation, o["location"], "location")
        ttl = parsed("--ttl", parse_duration, o["ttl"])
        selector = parsed("--selector", SelectorField().clean, o["selector"])
        policy = parsed("--volume-policy", parse_volume_policy, o["volume_policy"])
        try:
            backup = start_backup(
                cluster,
                location,
                name=o["name"],
                ttl=ttl,
                include_namespaces=split_list(o["include_namespaces"]),
                exclude_namespaces=split_list(o["exclude_namespaces"]),
                include_resources=split_list(o["include_resources"]),
                exclude_resources=split_list(o["exclude_resources"]),
                cluster_resources=o["cluster_resources"],
                label_selector=selector,
                include_disks=o["include_disks"],
                volume_mode=o["volume_mode"],
                volume_policy=policy,
            )
        except JobRefused as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(backup.name)
        if not o["wait"]:
            return
        backup = run_and_wait(backup)
        phase = PHASES[backup.status]
        self.stdout.write(phase)
        if backup.status in ("failed", "cancelled"):
            raise CommandError(backup.error or "The backup failed.")
        if backup.status != "completed":
            raise CommandError(
                f"{counted(backup.errors_count, 'item')} failed; see the backup's page or log."
                + "".join(f"\n  {line}" for line in error_lines(backup.log))
            )
