"""The Celery application. Tasks live in each app's tasks.py and stay thin."""

import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "palette_site.settings")

app = Celery("palette_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _warn_when_root(**_) -> None:
    import logging

    from palette_site.command_support import root_warning

    if warning := root_warning():
        logging.getLogger("palette.worker").warning(warning)
