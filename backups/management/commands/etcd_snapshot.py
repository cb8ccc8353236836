"""manage.py etcd_snapshot CLUSTER --location L [--wait]: prints the snapshot's name (and result)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from backups.jobs import JobRefused, run_and_wait, start_snapshot
from locations.models import BackupLocation
from palette_site.command_support import named
from workspaces.models import Cluster


class Command(BaseCommand):
    help = "Take an etcd snapshot of a cluster into a location. Prints its name (with --wait, its result)."

    def add_arguments(self, parser):
        parser.add_argument("cluster")
        parser.add_argument("--location", required=True)
        parser.add_argument("--wait", action="store_true", help="Wait; exit 1 unless it completed")

    def handle(self, *args, **o):
        cluster = named(Cluster, o["cluster"], "cluster")
        location = named(BackupLocation, o["location"], "location")
        try:
            snapshot = start_snapshot(cluster, location)
        except JobRefused as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(snapshot.name)
        if not o["wait"]:
            return
        snapshot = run_and_wait(snapshot)
        if snapshot.status != "completed":
            self.stdout.write("Failed")
            raise CommandError(snapshot.error or "The snapshot failed.")
        self.stdout.write("Completed")
        self.stdout.write(
            f"{snapshot.size_bytes} bytes, revision {snapshot.revision}, sha256 {snapshot.sha256}"
        )
