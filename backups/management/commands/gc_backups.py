"""manage.py gc_backups: delete expired backups (storage first, then the row)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from backups.engine.words import counted
from backups.expiry import gc_backups


class Command(BaseCommand):
    help = "Delete expired backups from their locations, then from the console."

    def handle(self, *args, **options):
        result = gc_backups()
        for name in result.deleted:
            self.stdout.write(f"deleted {name}")
        self.stdout.write(f"{counted(len(result.deleted), 'expired backup')} deleted.")
        if result.failed:
            lines = "\n".join(f"  {name}: {reason}" for name, reason in result.failed.items())
            raise CommandError(
                f"{counted(len(result.failed), 'expired backup')} could not be deleted and will be "
                f"retried:\n{lines}"
            )
