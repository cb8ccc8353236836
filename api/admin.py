"""API tokens in the admin: support staff see who has which token and may revoke one;
nobody makes or reads a token here (the digest is all there is)."""

from __future__ import annotations

from django.contrib import admin, messages

from workspaces import audit

from .models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "shown", "read_only", "created_at", "expires_at",
                    "last_used_at", "revoked_at"]  # fmt: skip
    list_filter = ["read_only"]
    search_fields = ["name", "user__username", "shown"]
    exclude = ["digest"]
    readonly_fields = ["user", "name", "shown", "read_only", "created_at", "expires_at",
                       "last_used_at", "revoked_at"]  # fmt: skip
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset) -> None:
        for token in queryset.filter(revoked_at__isnull=True):
            token.revoke()
            audit.record(request.user, "revoked", token, user=token.user.get_username())
        messages.success(request, "Revoked.")
