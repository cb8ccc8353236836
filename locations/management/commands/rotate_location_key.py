"""manage.py rotate_location_key NAME: a new data key for new objects; old ones still open."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from backups.engine.storage.base import StorageError
from locations.keys import rotate
from locations.models import BackupLocation
from palette_site.command_support import named
from workspaces import audit


class Command(BaseCommand):
    help = (
        "Give an encrypting location a new data key. New backups are sealed with it; "
        "backups sealed with the previous keys still restore."
    )

    def add_arguments(self, parser):
        parser.add_argument("name")

    def handle(self, *args, **options):
        location = named(BackupLocation, options["name"], "location")
        if not location.encrypt:
            raise CommandError(f"Location {location.name} does not encrypt: it has no keys.")
        try:
            key = rotate(location)
        except StorageError as exc:
            raise CommandError(str(exc)) from None
        audit.record(None, "rotated the data key of", location, key=key.key_id)
        self.stdout.write(f"New data key {key.key_id} ({key.get_wrapped_by_display()}).")
