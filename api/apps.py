from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "REST API and tokens"

    def ready(self) -> None:
        from . import schema  # noqa: F401  (registers the schema's auth extension)
