"""Named, reusable resource-modifier rule sets of a workspace (Velero's format)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse

from palette_site.model_fields import user_field
from workspaces.access import ResourceModifierSetQuerySet

from ..engine.restore import modifiers


def validate_rules(text: str) -> None:
    """Rules the restore engine can use; the engine's message otherwise."""
    try:
        found = modifiers.parse(text)
    except modifiers.ModifierError as exc:
        raise ValidationError(str(exc)) from None
    if not found:
        raise ValidationError("Write at least one rule.")


class ResourceModifierSet(models.Model):
    """Rules that change objects as a restore creates them (a storage class, a
    namespace selector, an annotation dropped). A restore keeps a copy of the rules it
    ran with, so editing a set later never changes what an earlier restore did, and a
    confirmed preview runs with exactly the rules the preview showed."""

    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.CASCADE, related_name="modifier_sets"
    )
    name = models.SlugField(max_length=63, help_text="Lower-case letters, digits and '-'.")
    description = models.CharField(max_length=500, blank=True)
    rules = models.TextField(
        validators=[validate_rules],
        help_text="Velero's resource modifier YAML: version: v1 and resourceModifierRules.",
    )
    created_by = user_field()
    updated_at = models.DateTimeField(auto_now=True)

    objects = ResourceModifierSetQuerySet.as_manager()

    class Meta:
        ordering = ["workspace", "name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="modifier_set_unique_name")
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("modifier_set_detail", args=[self.pk])

    def refusal(self, target) -> str:
        """Why a restore into ``target`` (a Cluster) may not use this set ("" if it may):
        a set serves the clusters of its own workspace only."""
        if self.workspace_id != target.workspace_id:
            return (
                f"The resource modifier set {self.name} belongs to another workspace than "
                f"cluster {target.name}."
            )
        return ""
