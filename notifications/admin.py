from django.contrib import admin

from .models import Alarm, Delivery, Rule


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    list_display = ["name", "workspace", "channel", "url_host", "enabled"]
    list_filter = ["channel", "enabled"]
    # The URL and the signing secret are never shown (the URL may be a credential).
    exclude = ["url", "secret"]
    readonly_fields = ["url_host", "created_at", "created_by"]


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["event", "rule", "status", "attempts", "last_code", "created_at"]
    list_filter = ["status", "event"]
    readonly_fields = [f.name for f in Delivery._meta.fields]


@admin.register(Alarm)
class AlarmAdmin(admin.ModelAdmin):
    list_display = ["event", "key", "workspace", "active", "raised_at", "cleared_at"]
    list_filter = ["active", "event"]
