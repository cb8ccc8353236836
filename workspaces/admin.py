from django import forms
from django.contrib import admin

from palette_site.admin_tools import SecretsAdminMixin

from . import models
from .etcd_identity import EtcdError, EtcdIdentityError, record
from .kube import KubeconfigError, check_egress, parse_kubeconfig


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
class MembershipAdmin(admin.ModelAdmin):
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
    """The model's clean() applies the etcd endpoint's rules; this reads etcd's
    identity again when the endpoint or its certificates change, or when the
    recorded cluster ID is cleared (after an etcd was rebuilt)."""

    ETCD_FIELDS = ("etcd_endpoint", "etcd_ca", "etcd_cert", "new_etcd_key", "etcd_cluster_id")

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
