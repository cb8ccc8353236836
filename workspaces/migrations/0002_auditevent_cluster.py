"""The cluster each audit event is about, so a single-cluster grantee reads only its events.

Events written before are matched to their object while it still exists; the others
stay workspace-wide (only members of the workspace read them).
"""

import django.db.models.deletion
from django.db import migrations, models

# object_type (the model's verbose name) -> the model and the field holding its cluster
CLUSTER_OF = {
    "cluster": ("workspaces", "Cluster", "pk"),
    "backup": ("backups", "Backup", "cluster_id"),
    "restore": ("backups", "Restore", "target_cluster_id"),
    "etcd snapshot": ("backups", "EtcdSnapshot", "cluster_id"),
    "etcd restore": ("backups", "EtcdRestore", "cluster_id"),
    "schedule": ("backups", "Schedule", "cluster_id"),
    "etcd policy": ("backups", "EtcdPolicy", "cluster_id"),
}


def match_events_to_clusters(apps, schema_editor):
    event_model = apps.get_model("workspaces", "AuditEvent")
    for object_type, (app, model, field) in CLUSTER_OF.items():
        rows = apps.get_model(app, model).objects.exclude(**{field: None})
        cluster_of = {str(pk): cluster for pk, cluster in rows.values_list("pk", field)}
        events = event_model.objects.filter(object_type=object_type, cluster__isnull=True)
        matched = []
        for event in events.only("pk", "object_id").iterator():
            if cluster := cluster_of.get(event.object_id):
                event.cluster_id = cluster
                matched.append(event)
        event_model.objects.bulk_update(matched, ["cluster"], batch_size=500)


class Migration(migrations.Migration):
    dependencies = [
        ("workspaces", "0001_initial"),
        ("backups", "0005_auto_label"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="cluster",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="audit_events",
                to="workspaces.cluster",
            ),
        ),
        migrations.RunPython(match_events_to_clusters, migrations.RunPython.noop),
    ]
