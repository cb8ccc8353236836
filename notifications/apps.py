from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from backups.jobs.base import job_finished

        from .events import on_job_finished

        job_finished.connect(on_job_finished, dispatch_uid="notifications.job_finished")
