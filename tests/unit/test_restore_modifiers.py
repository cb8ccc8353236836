"""Resource modifiers in Velero's format: parsing, matching, JSON Patch and merge patch."""

from __future__ import annotations

import json

import pytest

from backups.engine.restore.modifiers import ModifierError, parse
from backups.engine.restore.plan import PlannedItem
from backups.engine.restore.sanitize import SanitizeOptions

RULES = """
version: v1
resourceModifierRules:
- conditions:
    groupResource: persistentvolumeclaims
    resourceNameRegex: "^db-.*$"
    namespaces: [shop]
    labelSelector: {matchLabels: {tier: db}}
  patches:
  - operation: replace
    path: /spec/storageClassName
    value: premium
  - operation: remove
    path: /metadata/annotations/old
- conditions:
    groupResource: "*.apps"
  patches:
  - operation: replace
    path: /spec/replicas
    value: "1"
- conditions:
    groupResource: configmaps
  mergePatches:
  - patchData: |
      {"metadata": {"annotations": {"drop-me": null}}, "data": {"added": "yes"}}
"""


def pvc(name="db-1", namespace="shop", labels=None):
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {"tier": "db"},
                     "annotations": {"old": "x"}},
        "spec": {"storageClassName": "standard"},
    }  # fmt: skip


def test_a_json_patch_applies_to_the_objects_its_conditions_select():
    rules = parse(RULES)
    changed, notes = rules.apply("persistentvolumeclaims", "shop", pvc())
    assert changed["spec"]["storageClassName"] == "premium"
    assert "old" not in changed["metadata"]["annotations"]
    assert notes == ["Modified by resource modifier rule 1 (replace /spec/storageClassName, "
                     "remove /metadata/annotations/old)."]  # fmt: skip


@pytest.mark.parametrize(
    "args",
    [
        ("persistentvolumeclaims", "shop", pvc(name="web-1")),  # name regex
        ("persistentvolumeclaims", "other", pvc()),  # namespace
        ("persistentvolumeclaims", "shop", pvc(labels={"tier": "web"})),  # label selector
        ("configmaps.x", "shop", pvc()),  # group-resource
    ],
)
def test_objects_the_conditions_do_not_select_are_left_alone(args):
    gr, ns, obj = args
    changed, notes = parse(RULES).apply(gr, ns, obj)
    assert changed["spec"]["storageClassName"] == "standard" and notes == []


def test_namespaces_are_the_backups_not_the_mapped_ones():
    """As Velero: the rule names the namespace the object had in the backup."""
    item = PlannedItem(
        "persistentvolumeclaims", "shop", "shop-copy", "db-1", "v1", "PersistentVolumeClaim",
        json.dumps(pvc()).encode(),
        SanitizeOptions("b", "r", {"shop": "shop-copy"}, modifiers=parse(RULES)),
    )  # fmt: skip
    body, notes = item.prepare()
    assert body["metadata"]["namespace"] == "shop-copy"
    assert body["spec"]["storageClassName"] == "premium"
    assert any("rule 1" in note for note in notes)


def test_a_value_is_json_when_it_parses_as_json_and_globs_match_groups():
    deploy = {"metadata": {"name": "web"}, "spec": {"replicas": 3}}
    changed, _ = parse(RULES).apply("deployments.apps", "shop", deploy)
    assert changed["spec"]["replicas"] == 1
    assert deploy["spec"]["replicas"] == 3  # the caller's object is not changed


def test_a_merge_patch_removes_with_null_and_merges_maps():
    cm = {"metadata": {"name": "c", "annotations": {"drop-me": "1", "keep": "2"}},
          "data": {"a": "1"}}  # fmt: skip
    changed, notes = parse(RULES).apply("configmaps", "shop", cm)
    assert changed["metadata"]["annotations"] == {"keep": "2"}
    assert changed["data"] == {"a": "1", "added": "yes"}
    assert notes == ["Modified by resource modifier rule 3 (merge patch)."]


def test_a_failed_test_operation_means_the_rule_does_not_apply():
    rules = parse("""version: v1
resourceModifierRules:
- conditions: {groupResource: persistentvolumeclaims}
  patches:
  - {operation: test, path: /spec/storageClassName, value: gold}
  - {operation: replace, path: /spec/storageClassName, value: premium}
""")
    changed, notes = rules.apply("persistentvolumeclaims", "shop", pvc())
    assert changed["spec"]["storageClassName"] == "standard" and notes == []


def test_matches_select_on_a_field_value():
    rules = parse("""version: v1
resourceModifierRules:
- conditions:
    groupResource: persistentvolumeclaims
    matches: [{path: /spec/storageClassName, value: standard}]
  patches: [{operation: replace, path: /spec/storageClassName, value: fast}]
""")
    assert rules.apply("persistentvolumeclaims", "", pvc())[0]["spec"]["storageClassName"] == "fast"
    other = pvc()
    other["spec"]["storageClassName"] = "gold"
    assert rules.apply("persistentvolumeclaims", "", other)[1] == []


def test_every_rule_matches_the_object_as_it_was_before_any_rule():
    """As Velero: conditions see the original object; patches build on each other."""
    rules = parse("""version: v1
resourceModifierRules:
- conditions: {groupResource: persistentvolumeclaims, labelSelector: {matchLabels: {tier: db}}}
  patches: [{operation: replace, path: /metadata/labels/tier, value: web}]
- conditions: {groupResource: persistentvolumeclaims, labelSelector: {matchLabels: {tier: web}}}
  patches: [{operation: replace, path: /spec/storageClassName, value: web-disks}]
- conditions:
    groupResource: persistentvolumeclaims
    matches: [{path: /metadata/labels/tier, value: db}]
  mergePatches: [{patchData: '{"metadata": {"labels": {"moved": "yes"}}}'}]
""")
    changed, notes = rules.apply("persistentvolumeclaims", "shop", pvc())
    assert changed["metadata"]["labels"] == {"tier": "web", "moved": "yes"}
    assert changed["spec"]["storageClassName"] == "standard"  # rule 2 saw tier=db
    assert [n.split(" (")[0] for n in notes] == [
        "Modified by resource modifier rule 1",
        "Modified by resource modifier rule 3",
    ]


def test_a_patch_on_a_missing_path_fails_that_object_with_the_rule_named():
    rules = parse("""version: v1
resourceModifierRules:
- conditions: {groupResource: persistentvolumeclaims}
  patches: [{operation: replace, path: /spec/missing/deep, value: x}]
""")
    with pytest.raises(ModifierError, match="rule 1 failed"):
        rules.apply("persistentvolumeclaims", "", pvc())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: v2\nresourceModifierRules: []", "version: v1"),
        ("version: v1\nresourceModifierRules: []", "no resourceModifierRules"),
        ("version: v1\nresourceModifierRules: [{", "not valid YAML"),
        ("- a\n- b", "must be a mapping"),
        (
            "version: v1\nresourceModifierRules:\n- conditions: {groupResource: pods}\n"
            "  strategicPatches: [{patchData: '{}'}]",
            "cannot apply strategic merge patches",
        ),
        (
            "version: v1\nresourceModifierRules:\n- conditions: {groupResource: pods}\n"
            "  patches: [{operation: frob, path: /a}]",
            "not one of add",
        ),
        (
            "version: v1\nresourceModifierRules:\n- conditions: {groupResource: pods}\n"
            "  patches: [{operation: add, path: spec}]",
            "not a JSON pointer",
        ),
        (
            "version: v1\nresourceModifierRules:\n- conditions: {groupResource: pods}\n"
            "  patches: [{operation: add, path: /spec/x}]",
            "needs a value",
        ),
        ("version: v1\nresourceModifierRules:\n- conditions: {}\n", "groupResource"),
        (
            "version: v1\nresourceModifierRules:\n- conditions: {groupResource: pods, "
            "resourceNameRegex: '('}\n  patches: [{operation: remove, path: /a}]",
            "resourceNameRegex",
        ),
        (
            "version: v1\nresourceModifierRules:\n- conditions: {groupResource: pods}\n",
            "no patches",
        ),
        (
            "version: v1\nresourceModifierRules:\n- conditions: {groupResource: pods}\n"
            "  mergePatches: [{patchData: '[1]'}]",
            "JSON object",
        ),
        (  # Velero applies one kind per rule and refuses a rule with both
            "version: v1\nresourceModifierRules:\n- conditions: {groupResource: pods}\n"
            "  patches: [{operation: remove, path: /a}]\n"
            "  mergePatches: [{patchData: '{\"b\": null}'}]",
            "both patches and mergePatches.*two rules with the same conditions",
        ),
    ],
)
def test_rule_sets_that_cannot_be_used_are_refused_with_what_to_fix(text, message):
    with pytest.raises(ModifierError, match=message):
        parse(text)


def test_no_text_is_no_rules():
    assert not parse("") and not parse("  \n")
