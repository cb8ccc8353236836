"""manage.py sync_location NAME: import the backups found in a location; prints how many."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from backups.engine.storage.base import StorageError
from backups.engine.words import counted
from backups.sync import SyncRefused, sync_location
from locations.models import BackupLocation
from palette_site.command_support import named


class Command(BaseCommand):
    help = "Import backups found in a location (Velero's or another console's), read-only."

    def add_arguments(self, parser):
        parser.add_argument("name")

    def handle(self, *args, **options):
        location = named(BackupLocation, options["name"], "location")
        try:
            result = sync_location(location)
        except (SyncRefused, StorageError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{counted(len(result.imported), 'backup')} imported")
        if result.removed:
            self.stdout.write(
                f"{counted(len(result.removed), 'backup')} removed: their files are gone"
            )
        for name, reason in result.skipped.items():
            # A folder name is input: repr() shows a CR/LF instead of starting a new line.
            shown = name if name.isprintable() else repr(name)
            self.stdout.write(f"skipped {shown}: {reason}")
