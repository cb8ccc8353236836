"""manage.py location_keys NAME: which data key sealed which backups."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from locations.keys import report
from locations.models import BackupLocation
from palette_site.command_support import named


class Command(BaseCommand):
    help = "List a location's data keys and the backups and etcd snapshots each one sealed."

    def add_arguments(self, parser):
        parser.add_argument("name")

    def handle(self, *args, **options):
        location = named(BackupLocation, options["name"], "location")
        if not location.encrypt:
            self.stdout.write(f"Location {location.name} does not encrypt.")
        for row in report(location):
            key = row["key"]
            if key is None and not (row["backups"] or row["snapshots"]):
                continue
            if key is None:
                title = "Not encrypted"
            else:
                state = "current" if row["current"] else f"retired {key.retired_at:%Y-%m-%d %H:%M}"
                title = f"{key.key_id} ({state}, wrapped by {key.get_wrapped_by_display()})"
            count = len(row["backups"])
            self.stdout.write(
                f"{title}: {count} backup{'s' * (count != 1)}, "
                f"{row['snapshots']} etcd snapshot{'s' * (row['snapshots'] != 1)}"
            )
            for name in row["backups"]:
                self.stdout.write(f"  {name}")
