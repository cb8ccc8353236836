from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("backups", "0011_backup_origin")]

    operations = [
        migrations.AddField(
            model_name="restore",
            name="chosen_items",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="A granular restore's items, each [type, namespace, name] as the "
                "backup's resource list names them (apps/v1/Deployment); empty: all the "
                "filters allow.",
            ),
        ),
    ]
