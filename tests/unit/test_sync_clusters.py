"""Which cluster an imported backup came from: the label, else the longest registered name
inside the backup's name; only a cluster of the location's workspace becomes the backup's."""

from __future__ import annotations

import pytest

from backups.sync import CLUSTER_LABEL, Clusters, backup_from_document
from tests import factories

pytestmark = pytest.mark.django_db


def document(name: str, **labels) -> dict:
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {"includedNamespaces": ["*"]},
        "status": {"phase": "Completed"},
    }


@pytest.fixture
def setup():
    home, other = factories.workspace("home"), factories.workspace("other")
    prod = factories.cluster(home, "prod")
    prod_eu = factories.cluster(home, "prod-eu")
    factories.cluster(other, "staging")
    return factories.location(home), prod, prod_eu


def test_the_label_names_the_cluster(setup):
    loc, prod, _ = setup
    backup = backup_from_document(
        loc, document("nightly-x-20260101000000", **{CLUSTER_LABEL: "prod"})
    )
    assert (backup.cluster_name, backup.cluster) == ("prod", prod)


def test_without_a_label_the_longest_name_inside_the_backup_name_wins(setup):
    loc, _, prod_eu = setup
    backup = backup_from_document(loc, document("nightly-prod-eu-20260101000000"))
    assert (backup.cluster_name, backup.cluster) == ("prod-eu", prod_eu)


def test_a_cluster_of_another_workspace_is_named_but_not_linked(setup):
    loc, _, _ = setup
    backup = backup_from_document(loc, document("nightly-staging-20260101000000"))
    assert (backup.cluster_name, backup.cluster) == ("staging", None)


def test_an_unmatched_backup_is_from_an_unknown_cluster(setup):
    loc, _, _ = setup
    backup = backup_from_document(loc, document("velero-made-by-hand"))
    assert (backup.cluster_name, backup.cluster) == ("unknown", None)


def test_the_clusters_are_read_once_however_many_backups(setup, django_assert_num_queries):
    loc, _, _ = setup
    with django_assert_num_queries(2):
        clusters = Clusters(loc.workspace_id)
    with django_assert_num_queries(0):
        for i in range(20):
            backup_from_document(loc, document(f"b{i}-prod-2026"), clusters)
