"""manage.py validate_location NAME: check it now, record the result; exit 1 if unavailable."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from locations.models import BackupLocation
from locations.validation import validate_and_record
from palette_site.command_support import named


class Command(BaseCommand):
    help = (
        "Validate a backup location now (write, read, list, delete a probe) and record the result."
    )

    def add_arguments(self, parser):
        parser.add_argument("name")

    def handle(self, *args, **options):
        location = named(BackupLocation, options["name"], "location")
        result = validate_and_record(location)
        if not result.ok:
            raise CommandError(f"Unavailable: {result.message}")
        self.stdout.write("Available")
        for warning in result.warnings:
            self.stdout.write(f"Warning: {warning}")
