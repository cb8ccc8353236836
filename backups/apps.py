from django.apps import AppConfig


class BackupsConfig(AppConfig):
    name = "backups"
    verbose_name = "Backups, restores and etcd snapshots"

    def ready(self) -> None:
        # Jobs queue their tasks by name: register them in every process (web,
        # commands, workers), as Django registers signal handlers here.
        from . import tasks  # noqa: F401
