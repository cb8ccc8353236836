import secrets

from django.db import migrations, models


def regenerate_duplicates(apps, schema_editor):
    """A reused external ID is the confused-deputy hole: every copy but the oldest
    gets a new one (its role's trust policy must then be updated)."""
    BackupLocation = apps.get_model("locations", "BackupLocation")
    seen = set()
    for location in BackupLocation.objects.exclude(external_id="").order_by("pk"):
        if location.external_id in seen:
            location.external_id = "palette-" + secrets.token_hex(12)
            location.save(update_fields=["external_id"])
        seen.add(location.external_id)


class Migration(migrations.Migration):
    dependencies = [("locations", "0002_initial")]

    operations = [
        migrations.RunPython(regenerate_duplicates, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="backuplocation",
            constraint=models.UniqueConstraint(
                condition=models.Q(("external_id", ""), _negated=True),
                fields=("external_id",),
                name="unique_location_external_id",
            ),
        ),
    ]
