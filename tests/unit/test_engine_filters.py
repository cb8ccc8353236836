"""The backup engine's filters: label selectors, namespaces, resource names, scope."""

from __future__ import annotations

import pytest

from backups.engine.filters import (
    FilterError,
    NamespaceFilter,
    Scope,
    build_scope,
    parse_selector,
    resolve_resources,
    validate_selector,
)
from backups.engine.inputs import BackupSpec
from backups.engine.kube.discovery import ResourceType

TYPES = [
    ResourceType("", "v1", "pods", "Pod", True, "pod", ("po",)),
    ResourceType("", "v1", "configmaps", "ConfigMap", True, "configmap", ("cm",)),
    ResourceType("", "v1", "namespaces", "Namespace", False, "namespace", ("ns",)),
    ResourceType("", "v1", "persistentvolumes", "PersistentVolume", False, "", ("pv",)),
    ResourceType("apps", "v1", "deployments", "Deployment", True, "deployment", ("deploy",)),
    ResourceType("other.io", "v1", "deployments", "Deployment", True, "deployment"),
    ResourceType("storage.k8s.io", "v1", "storageclasses", "StorageClass", False, "", ("sc",)),
]


def by_name(gr: str) -> ResourceType:
    return next(t for t in TYPES if t.group_resource == gr)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", {}),
        ("app=shop", {"matchLabels": {"app": "shop"}}),
        ("app==shop,tier", {
            "matchLabels": {"app": "shop"},
            "matchExpressions": [{"key": "tier", "operator": "Exists"}],
        }),
        ("tier!=ops", {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["ops"]}]}),
        ("env in (b, a),!legacy", {"matchExpressions": [
            {"key": "env", "operator": "In", "values": ["a", "b"]},
            {"key": "legacy", "operator": "DoesNotExist"},
        ]}),
        ("app.kubernetes.io/part-of=palette-demo", {
            "matchLabels": {"app.kubernetes.io/part-of": "palette-demo"}
        }),
        ("x notin (a)", {"matchExpressions": [{"key": "x", "operator": "NotIn", "values": ["a"]}]}),
    ],
)  # fmt: skip
def test_selectors_become_label_selector_objects(text, expected):
    assert parse_selector(text) == expected


@pytest.mark.parametrize("text", ["app=", "=x", "a,,b", "env in (a", "a=b c", "-bad=1", "x=1,x=2"])
def test_invalid_selectors_are_refused_with_the_reason(text):
    if text == "app=":  # an empty value is valid for the API server
        assert parse_selector(text) == {"matchLabels": {"app": ""}}
        return
    with pytest.raises(FilterError, match="not valid") as info:
        validate_selector(text)
    assert repr(text) in str(info.value)


def test_namespace_filter_semantics():
    everything = NamespaceFilter.of([], [])
    assert everything.selects_everything and everything.explicit is None
    assert everything.allows("anything")

    chosen = NamespaceFilter.of(["shop", "billing"], ["billing"])
    assert not chosen.selects_everything
    assert chosen.explicit == ("shop",)
    assert chosen.allows("shop") and not chosen.allows("billing") and not chosen.allows("x")

    excluded = NamespaceFilter.of(["*"], ["kube-*"])
    assert excluded.includes_all and not excluded.selects_everything
    assert excluded.explicit is None
    assert excluded.allows("shop") and not excluded.allows("kube-system")

    globbed = NamespaceFilter.of(["bulk-*"], [])
    assert globbed.explicit is None and globbed.allows("bulk-001") and not globbed.allows("shop")


def test_resource_names_resolve_like_velero():
    found, unknown = resolve_resources(
        ["deployments.apps", "cm", "Pod", "sc", "nosuch", "deployments.other.io"], TYPES
    )
    assert found == {"deployments.apps", "configmaps", "pods", "storageclasses.storage.k8s.io",
                     "deployments.other.io"}  # fmt: skip
    assert unknown == ["nosuch"]
    # Without a group, the first match in discovery order (apps before other.io).
    assert resolve_resources(["deployments"], TYPES)[0] == {"deployments.apps"}
    assert resolve_resources(["deploy"], TYPES)[0] == {"deployments.apps"}
    assert resolve_resources([], TYPES) == (None, [])
    assert resolve_resources(["*"], TYPES) == (None, [])


def scope(mode="auto", include=(), exclude=(), included=None, excluded=()):
    return Scope(NamespaceFilter.of(include, exclude), mode, "", included, set(excluded))


def test_cluster_scoped_types_follow_the_mode():
    pv, cm, ns = by_name("persistentvolumes"), by_name("configmaps"), by_name("namespaces")
    # auto without a namespace filter: everything
    assert scope("auto").wants_type(pv) and not scope("auto").related_cluster_items
    # auto with a namespace filter (include or exclude): only related objects
    for filtered in (scope("auto", include=["shop"]), scope("auto", exclude=["kube-system"])):
        assert not filtered.wants_type(pv) and filtered.wants_type(cm)
        assert filtered.related_cluster_items and filtered.wants_related("persistentvolumes")
    assert scope("always", include=["shop"]).wants_type(pv)
    assert not scope("never").wants_type(pv) and scope("never").wants_type(cm)
    assert not scope("never", include=["shop"]).related_cluster_items
    # Namespaces are never a plain LIST unit: they are written apart.
    assert not scope("always").wants_type(ns)
    assert scope("never").wants_namespace_objects()


def test_resource_include_and_exclude():
    only_cm = scope("always", included={"configmaps"})
    assert only_cm.wants_type(by_name("configmaps"))
    assert not only_cm.wants_type(by_name("pods"))
    assert not only_cm.wants_type(by_name("persistentvolumes"))
    assert not only_cm.wants_namespace_objects()
    no_cm = scope("auto", excluded={"configmaps", "persistentvolumes"}, include=["shop"])
    assert not no_cm.wants_type(by_name("configmaps")) and no_cm.wants_type(by_name("pods"))
    # Related cluster objects ignore the include list, not an explicit exclude.
    assert not no_cm.wants_related("persistentvolumes")
    assert scope("auto", include=["shop"], included={"pods"}).wants_related("persistentvolumes")


def test_build_scope_reads_a_backups_options_and_warns_about_unknown_names():
    options = BackupSpec(
        include_namespaces=("shop", " "),
        include_resources=("configmaps", "gadgets"),
        cluster_resources="never",
        label_selector="tier=backend",
    )
    built, warnings = build_scope(options, TYPES)
    assert built.namespaces.include == ("shop",)
    assert built.included == {"configmaps"} and built.cluster_resources == "never"
    assert built.selector == "tier=backend"
    assert len(warnings) == 1 and "'gadgets'" in warnings[0]
