"""Resource modifier sets: saving them (clean refusals, nothing half-saved), choosing one
in the wizard and on the command line, and the copy a restore keeps of its rules."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from backups.management.commands.restore import Command as RestoreCommand
from backups.models import ResourceModifierSet, Restore, RestoreItem
from tests import factories
from workspaces.models import AuditEvent
from workspaces.roles import Role

RULES = """version: v1
resourceModifierRules:
- conditions: {groupResource: persistentvolumeclaims}
  patches: [{operation: replace, path: /spec/storageClassName, value: fast}]
"""
STRATEGIC = """version: v1
resourceModifierRules:
- conditions: {groupResource: deployments.apps}
  strategicPatches: [{patchData: '{"spec": {}}'}]
"""


def a_set(world, name="storage", rules=RULES, workspace=None):
    return ResourceModifierSet.objects.create(
        workspace=workspace or world.workspace, name=name, rules=rules
    )


def wizard(client, world, **fields):
    data = {"target_cluster": world.cluster.pk, "cluster_resources": "auto",
            "existing_policy": "none", "action": "preview", **fields}  # fmt: skip
    return client.post(reverse("restore_wizard", args=[world.backup.pk]), data)


def test_it_saves_a_set_and_audits_it(world, login):
    client = login(world.users["operator"])
    url = reverse("modifier_set_create", args=[world.workspace.slug])
    response = client.post(url, {"name": "storage", "description": "PVCs to fast", "rules": RULES})
    saved = ResourceModifierSet.objects.get(workspace=world.workspace, name="storage")
    assert response.status_code == 302 and response["Location"] == saved.get_absolute_url()
    assert saved.created_by == world.users["operator"]
    assert AuditEvent.objects.filter(action="created resource modifiers").exists()
    page = client.get(reverse("modifier_set_list", args=[world.workspace.slug])).content.decode()
    assert "storage" in page and "PVCs to fast" in page


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (STRATEGIC, "cannot apply strategic merge patches"),
        ("version: v1\nresourceModifierRules: [{", "not valid YAML"),
        ("", "This field is required"),
    ],
)
def test_rules_that_cannot_be_used_are_refused_and_nothing_is_saved(world, login, rules, message):
    client = login(world.users["admin"])
    url = reverse("modifier_set_create", args=[world.workspace.slug])
    response = client.post(url, {"name": "bad", "rules": rules})
    assert response.status_code == 200 and message in response.content.decode()
    assert not ResourceModifierSet.objects.exists()


def test_a_name_is_used_once_per_workspace(world, login):
    a_set(world)
    client = login(world.users["admin"])
    url = reverse("modifier_set_create", args=[world.workspace.slug])
    response = client.post(url, {"name": "storage", "rules": RULES})
    assert response.status_code == 200
    assert "already" in response.content.decode()
    assert ResourceModifierSet.objects.count() == 1
    other = factories.workspace("Other")
    assert a_set(world, workspace=other).name == "storage"  # another workspace may


def test_a_viewer_reads_the_rules_but_gets_no_form(world, login):
    chosen = a_set(world)
    page = login(world.users["viewer"]).get(chosen.get_absolute_url()).content.decode()
    assert "/spec/storageClassName" in page and "<textarea" not in page
    edit = login(world.users["viewer"]).post(
        chosen.get_absolute_url(), {"name": "x", "rules": RULES}
    )
    assert edit.status_code == 403
    chosen.refresh_from_db()
    assert chosen.name == "storage"


def test_the_wizard_copies_the_chosen_rules_onto_the_preview_and_confirm_keeps_them(world, login):
    chosen = a_set(world)
    client = login(world.users["operator"])
    assert wizard(client, world, modifier_set=chosen.pk).status_code == 302
    preview = Restore.objects.get(is_preview=True, modifier_set=chosen)
    assert preview.resource_modifiers == RULES
    ResourceModifierSet.objects.filter(pk=chosen.pk).update(rules=RULES.replace("fast", "slow"))
    Restore.objects.filter(pk=preview.pk).update(status="completed")
    client.post(reverse("restore_confirm", args=[preview.pk]))
    restore = Restore.objects.get(is_preview=False, modifier_set=chosen)
    assert restore.resource_modifiers == RULES  # exactly what the preview ran with


def test_the_wizard_refuses_a_set_of_another_workspace(world, login):
    other = factories.workspace("Other")
    other.grant(Role.OPERATOR, user=world.users["operator"])
    foreign = a_set(world, name="foreign", workspace=other)
    response = wizard(login(world.users["operator"]), world, modifier_set=foreign.pk)
    assert response.status_code == 200
    assert "belongs to another workspace" in response.content.decode()
    assert not Restore.objects.filter(modifier_set=foreign).exists()


def test_a_set_one_may_not_see_is_no_choice(world, login):
    hidden = a_set(world, name="hidden", workspace=factories.workspace("Hidden"))
    response = wizard(login(world.users["operator"]), world, modifier_set=hidden.pk)
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()


def test_deleting_a_set_keeps_the_restores_copy(world, login):
    chosen = a_set(world)
    restore = factories.restore(world.backup, world.cluster, modifier_set=chosen,
                                resource_modifiers=RULES)  # fmt: skip
    login(world.users["operator"]).post(reverse("modifier_set_delete", args=[chosen.pk]))
    restore.refresh_from_db()
    assert restore.modifier_set is None and restore.resource_modifiers == RULES


def command(world, *extra):
    call_command("restore", world.backup.name, "--to", world.cluster.name, "--preview", *extra)
    return Restore.objects.order_by("-id").first()


def test_the_command_takes_the_new_filters_and_a_set(world, capsys):
    a_set(world)
    restore = command(
        world, "--include-resources", "deploy,configmaps", "--exclude-resources", "secrets",
        "--exclude-namespaces", "kube-system", "--selector", "app=shop",
        "--resource-modifiers", "storage",
    )  # fmt: skip
    assert restore.include_resources == ["deploy", "configmaps"]
    assert restore.exclude_resources == ["secrets"]
    assert restore.exclude_namespaces == ["kube-system"]
    assert restore.label_selector == "app=shop"
    assert restore.resource_modifiers == RULES and restore.modifier_set.name == "storage"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--resource-modifiers", "nope"), "has no resource modifier set 'nope'"),
        (("--selector", "a=(b"), "--selector"),
    ],
)
def test_the_command_refuses_bad_options_before_creating_anything(world, extra, message):
    with pytest.raises(CommandError, match=message):
        command(world, *extra)
    assert Restore.objects.count() == 1  # the world's own


def test_a_set_of_another_workspace_is_not_found_by_the_command(world):
    a_set(world, name="elsewhere", workspace=factories.workspace("Elsewhere"))
    with pytest.raises(CommandError, match="no resource modifier set 'elsewhere'"):
        command(world, "--resource-modifiers", "elsewhere")


def test_a_failed_restore_names_its_first_five_failures(world, capsys):
    restore = factories.restore(world.backup, world.cluster, failed_count=7)
    RestoreItem.objects.bulk_create(
        RestoreItem(restore=restore, resource="configmaps", namespace="shop", name=f"c{n}",
                    outcome="failed", message=f"refused {n}")
        for n in range(7)
    )  # fmt: skip
    RestoreCommand()._first_failures(restore)
    printed = capsys.readouterr().out.splitlines()
    assert printed[:5] == [f"Failed: configmaps shop/c{n}: refused {n}" for n in range(5)]
    assert printed[5].startswith("... and 2 more")


def test_the_restore_page_shows_the_rules_it_ran_with(world, login):
    chosen = a_set(world)
    restore = factories.restore(world.backup, world.cluster, modifier_set=chosen,
                                resource_modifiers=RULES)  # fmt: skip
    page = login(world.users["viewer"]).get(restore.get_absolute_url()).content.decode()
    assert "Resource modifiers" in page and "/spec/storageClassName" in page
