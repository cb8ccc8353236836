from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group

from palette_site.admin_tools import SecretsAdminMixin

from . import models
from .etcd_identity import EtcdError, EtcdIdentityError, record
from .kube import KubeconfigError, check_egress, parse_kubeconfig


class SuperusersGrantOnly:
    """Granting is for superusers: a staff account that may change memberships (or
    users, or teams) must not make itself Admin of any workspace through the admin."""

    def has_add_permission(self, request, *args):
        return request.user.is_superuser and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_delete_permission(request, obj)


class MembershipInline(admin.TabularInline):
    model = models.Membership
    extra = 0
    readonly_fields = ("user", "group", "role", "created_at")
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(models.Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "created_at", "created_by")
    search_fields = ("name", "slug", "description")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [MembershipInline]


@admin.register(models.Membership)
class MembershipAdmin(SuperusersGrantOnly, admin.ModelAdmin):
    """Grants go through Workspace.grant/revoke so guardian's rows follow the role."""

    list_display = ("workspace", "user", "group", "role", "created_at")
    list_filter = ("role", "workspace")
    search_fields = ("workspace__name", "user__username", "group__name")
    list_select_related = ("workspace", "user", "group")

    def save_model(self, request, obj, form, change):
        membership = obj.workspace.grant(obj.role, user=obj.user, group=obj.group)
        obj.pk = membership.pk

    def delete_model(self, request, obj):
        obj.workspace.revoke(obj)

    def delete_queryset(self, request, queryset):
        for membership in queryset.select_related("workspace"):
            membership.workspace.revoke(membership)


class ClusterAdminForm(forms.ModelForm):
    """The etcd endpoint and PEM are checked as at registration (registration.py),
    when they change: an unrelated edit is not held up by what was stored before. The
    model's clean() applies the endpoint's rules; etcd's identity is read again when
    the endpoint or its certificates change, or the recorded cluster ID is cleared
    (after an etcd was rebuilt)."""

    ETCD_FIELDS = ("etcd_endpoint", "etcd_ca", "etcd_cert", "new_etcd_key", "etcd_cluster_id")

    def clean(self):
        from django.core.exceptions import ValidationError

        from .registration import check_etcd_settings

        data = super().clean()
        if not set(self.ETCD_FIELDS) & set(self.changed_data):
            return data
        try:
            check_etcd_settings(
                data.get("etcd_endpoint", ""),
                data.get("etcd_ca", ""),
                data.get("etcd_cert", ""),
                data.get("new_etcd_key") or self.instance.etcd_key,
            )
        except ValidationError as exc:
            for name, errors in exc.message_dict.items():
                self.add_error(name if name in self.fields else None, errors)
        return data

    def _post_clean(self):
        super()._post_clean()
        cluster = self.instance
        new_kubeconfig = self.cleaned_data.get("new_kubeconfig")
        if new_kubeconfig:
            try:
                parse_kubeconfig(new_kubeconfig)
                check_egress(new_kubeconfig)
            except KubeconfigError as exc:
                self.add_error("new_kubeconfig", str(exc))
        if self.errors or not any(name in self.changed_data for name in self.ETCD_FIELDS):
            return
        cluster.etcd_key = self.cleaned_data.get("new_etcd_key") or cluster.etcd_key
        try:
            record(cluster)
        except EtcdIdentityError as exc:
            self.add_error("etcd_endpoint", str(exc))
        except EtcdError:
            cluster.etcd_cluster_id, cluster.etcd_members = "", []  # read at the next snapshot


@admin.register(models.Cluster)
class ClusterAdmin(SecretsAdminMixin, admin.ModelAdmin):
    form = ClusterAdminForm
    secret_fields = ("kubeconfig", "etcd_key")
    list_display = (
        "name",
        "workspace",
        "health",
        "server_version",
        "node_count",
        "last_checked_at",
    )
    list_filter = ("health", "workspace")
    search_fields = ("name", "description", "etcd_endpoint")
    list_select_related = ("workspace",)
    readonly_fields = (
        "health",
        "server_version",
        "node_count",
        "namespace_count",
        "namespaces",
        "health_message",
        "last_checked_at",
        "created_at",
        "etcd_members",
    )


@admin.register(models.AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("at", "actor_name", "action", "object_type", "object_repr", "workspace")
    list_filter = ("action", "object_type", "workspace")
    search_fields = ("actor_name", "object_repr", "action")
    date_hierarchy = "at"
    list_select_related = ("workspace",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ObjectPermissionAdmin(admin.ModelAdmin):
    """guardian's rows, for support to see who holds what; change roles via Membership."""

    list_display = ("content_object", "permission", "holder")
    search_fields = ("permission__codename",)
    list_select_related = True

    @admin.display(description="Holder")
    def holder(self, obj) -> str:
        return str(getattr(obj, "user", None) or getattr(obj, "group", ""))

    def has_change_permission(self, request, obj=None):
        return False


for permission_model in (
    models.WorkspaceUserObjectPermission,
    models.WorkspaceGroupObjectPermission,
    models.ClusterUserObjectPermission,
    models.ClusterGroupObjectPermission,
):
    admin.site.register(permission_model, ObjectPermissionAdmin)


class ConsoleUserAdmin(UserAdmin):
    """Staff may look after accounts (names, e-mail, active, passwords), but only a
    superuser changes what an account may do: superuser, staff, teams, permissions."""

    GRANTING = ("is_superuser", "is_staff", "groups", "user_permissions")

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        return fields if request.user.is_superuser else (*fields, *self.GRANTING)


class ConsoleGroupAdmin(SuperusersGrantOnly, GroupAdmin):
    """Teams hold workspace roles: only superusers change them."""


admin.site.unregister(get_user_model())
admin.site.register(get_user_model(), ConsoleUserAdmin)
admin.site.unregister(Group)
admin.site.register(Group, ConsoleGroupAdmin)
