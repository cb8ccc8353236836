"""manage.py copy_backup BACKUP --to LOCATION [--from LOCATION] [--wait]."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from backups.copies import copy_backup, queue_copy
from backups.jobs import JobRefused
from backups.models import Backup, Status
from locations.models import BackupLocation
from palette_site.command_support import named


class Command(BaseCommand):
    help = (
        "Copy a completed backup to another location (3-2-1). Every object is read back "
        "from the copy and its SHA-256 compared; the copy restores on its own."
    )

    def add_arguments(self, parser):
        parser.add_argument("backup", help="The backup's name")
        parser.add_argument("--to", required=True, help="The location to copy it to")
        parser.add_argument("--from", dest="source", help="Its location, if the name is in several")
        parser.add_argument("--wait", action="store_true", help="Copy here and wait for the result")

    def handle(self, *args, **o):
        found = Backup.objects.filter(name=o["backup"]).select_related("location")
        if o["source"]:
            found = found.filter(location__name=o["source"])
        backups = list(found[:2])
        if not backups:
            raise CommandError(f"There is no backup {o['backup']!r}.")
        if len(backups) > 1:
            raise CommandError(f"Backup {o['backup']!r} is in several locations: give --from.")
        to = named(BackupLocation, o["to"], "location")
        try:
            if not o["wait"]:
                copy = queue_copy(backups[0], to)
                self.stdout.write(f"Copy of {copy.name} to {to} started.")
                return
            copy = copy_backup(backups[0], to)
        except JobRefused as exc:
            raise CommandError(str(exc)) from None
        if copy.status != Status.COMPLETED:
            raise CommandError(copy.error)
        self.stdout.write(f"Copied {copy.name} to {to}: {copy.log.strip().splitlines()[-1]}")
