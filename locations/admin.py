from django.contrib import admin

from palette_site.admin_tools import SecretsAdminMixin
from workspaces.admin import ObjectPermissionAdmin

from . import models


@admin.register(models.BackupLocation)
class BackupLocationAdmin(SecretsAdminMixin, admin.ModelAdmin):
    secret_fields = ("credentials",)
    json_secret_fields = ("credentials",)
    list_display = ("name", "provider", "bucket", "prefix", "workspace", "is_default", "status")
    list_filter = ("provider", "status", "credential_mode")
    search_fields = ("name", "bucket", "prefix", "endpoint_url")
    list_select_related = ("workspace",)
    readonly_fields = ("status", "status_message", "last_validated_at", "created_at", "updated_at")


admin.site.register(models.LocationUserObjectPermission, ObjectPermissionAdmin)
admin.site.register(models.LocationGroupObjectPermission, ObjectPermissionAdmin)
