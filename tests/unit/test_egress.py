"""The egress policy on its own: which addresses a tenant's endpoint may lead to."""

from __future__ import annotations

import pytest

from palette_site.egress import EgressDenied, check_host, check_url


@pytest.fixture
def deny_all(settings):
    settings.PALETTE_EGRESS_ALLOW = []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000",
        "http://localhost:2379",
        "http://[::1]:443",
        "http://10.1.2.3",
        "http://172.16.0.1",
        "http://192.168.1.1",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0:80",
        "http://100.64.0.1",  # carrier-grade NAT
        "http://metadata.google.internal/computeMetadata/v1/",
        "10.0.0.5:2379",
    ],
)
def test_internal_addresses_are_refused_by_default(deny_all, url):
    with pytest.raises(EgressDenied) as refused:
        check_url(url, what="store endpoint")
    assert "is not allowed: the console does not connect to loopback" in str(refused.value)
    assert "PALETTE_EGRESS_ALLOW" in str(refused.value)


def test_public_addresses_pass(deny_all):
    for url in ("https://8.8.8.8", "https://[2001:4860:4860::8888]:443", ""):
        check_url(url)


def test_the_setting_allows_networks_and_names(settings):
    settings.PALETTE_EGRESS_ALLOW = ["10.0.0.0/8", "minio.internal"]
    check_url("http://10.20.30.40:9000")
    check_host("minio.internal")  # by name, before any resolution
    with pytest.raises(EgressDenied):
        check_url("http://192.168.0.1")
    # Allowing a private range does not open the metadata address.
    settings.PALETTE_EGRESS_ALLOW = ["169.254.0.0/16"]
    with pytest.raises(EgressDenied):
        check_url("http://169.254.169.254/")
    settings.PALETTE_EGRESS_ALLOW = ["169.254.169.254"]
    check_url("http://169.254.169.254/")


def test_the_message_is_the_same_for_open_closed_and_silent_ports(deny_all):
    messages = set()
    for port in (9, 19000, 65000):
        with pytest.raises(EgressDenied) as refused:
            check_url(f"http://127.0.0.1:{port}")
        messages.add(str(refused.value))
    assert len(messages) == 1
