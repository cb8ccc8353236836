"""manage.py serve: the web console and a local Celery worker (with its scheduler).

For one machine. At scale, run a WSGI server (gunicorn palette_site.wsgi), any
number of `celery -A palette_site worker` processes and one `celery beat`.
"""

from __future__ import annotations

import signal
import subprocess
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from palette_site.command_support import root_warning


class Command(BaseCommand):
    help = "Serve the console on 127.0.0.1:8000 with a local Celery worker and scheduler."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000")
        parser.add_argument("--concurrency", type=int, default=2)

    def handle(self, *args, **options):
        if warning := root_warning():
            self.stderr.write(self.style.WARNING(warning))
        worker = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "palette_site", "worker", "--beat",
                "--loglevel", "INFO", "--concurrency", str(options["concurrency"]),
                "--schedule", str(settings.DATA_DIR / "celerybeat-schedule"),
            ]
        )  # fmt: skip
        self.stdout.write(f"Started the local worker (pid {worker.pid}).")
        try:
            # --insecure: runserver serves the static files even with DEBUG off.
            call_command("runserver", options["addr"], use_reloader=False, insecure_serving=True)
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
