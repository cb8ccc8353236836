from django.contrib import admin

from .models import Identity


@admin.register(Identity)
class IdentityAdmin(admin.ModelAdmin):
    list_display = ["subject", "issuer", "user", "last_login_at"]
    search_fields = ["subject", "user__username"]
    readonly_fields = ["groups", "last_login_at", "created_at"]
