"""The rules for an etcd endpoint, checked before any connection (the connections
themselves: tests/integration/test_security_etcd.py)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from tests import factories
from workspaces.etcd_identity import EtcdIdentityError, check_endpoint, normalized


def test_endpoints_compare_by_host_and_port():
    assert normalized("https://10.0.0.5:2379") == normalized("http://10.0.0.5")
    assert normalized("10.0.0.5:2379,https://ETCD.example:2379") == {
        "10.0.0.5:2379",
        "etcd.example:2379",
    }
    assert not normalized("https://10.0.0.5:2380") & normalized("https://10.0.0.5:2379")


def test_client_certificates_are_required_unless_plaintext_is_allowed(db, settings):
    settings.PALETTE_ETCD_ALLOW_PLAINTEXT = False
    ws = factories.workspace("W")
    for endpoint, certs, message in (
        ("http://127.0.0.1:2379", {"etcd_cert": "c", "etcd_key": "k"}, "does not allow plaintext"),
        ("https://127.0.0.1:2379", {}, "only with a client certificate"),
        ("https://127.0.0.1:2379", {"etcd_cert": "c"}, "only with a client certificate"),
    ):
        cluster = factories.cluster(ws, etcd_endpoint=endpoint, **certs)
        with pytest.raises(EtcdIdentityError, match=message):
            check_endpoint(cluster)
        with pytest.raises(ValidationError):
            cluster.full_clean()
        cluster.delete()
    settings.PALETTE_ETCD_ALLOW_PLAINTEXT = True
    check_endpoint(factories.cluster(ws, etcd_endpoint="http://127.0.0.1:2379"))


def test_one_endpoint_one_cluster_across_workspaces(db):
    factories.cluster(factories.workspace("Theirs"), etcd_endpoint="https://127.0.0.1:2379")
    mine = factories.cluster(factories.workspace("Mine"), etcd_endpoint="http://127.0.0.1")
    with pytest.raises(EtcdIdentityError, match="already uses this etcd endpoint"):
        check_endpoint(mine)
