"""Kubeconfig checks and the sentences people see when a cluster cannot be reached."""

from __future__ import annotations

import socket
import threading

import pytest
import yaml

from tests.factories import UNREACHABLE_KUBECONFIG
from workspaces.kube import (
    KubeconfigError,
    check_health,
    flatten_kubeconfig,
    parse_kubeconfig,
    server_of,
)

GOOD = UNREACHABLE_KUBECONFIG.format(token="t")


def test_it_accepts_a_self_contained_kubeconfig():
    assert parse_kubeconfig(GOOD)["current-context"] == "ctx"
    assert server_of(GOOD) == "https://127.0.0.1:9"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not yaml", "not valid YAML"),
        ("kind: Pod", "not a kubeconfig"),
        (GOOD.replace("current-context: ctx", "current-context: nope"), "current-context"),
        (
            GOOD.replace("token: t", "tokenFile: /var/run/token"),
            "kubectl config view --raw --flatten",
        ),
        (GOOD.replace('certificate-authority-data: ""', "certificate-authority: ca.crt"), "files"),
        (GOOD.replace("token: t", "exec: {command: aws}"), "credential plugin"),
    ],
)
def test_it_explains_why_a_kubeconfig_cannot_be_used(text, reason):
    with pytest.raises(KubeconfigError, match=reason):
        parse_kubeconfig(text)


def test_it_inlines_files_like_kubectl_flatten(tmp_path):
    (tmp_path / "ca.crt").write_text("CA")
    text = GOOD.replace('certificate-authority-data: ""', "certificate-authority: ca.crt")
    flat = yaml.safe_load(flatten_kubeconfig(text, tmp_path))
    cluster = flat["clusters"][0]["cluster"]
    assert "certificate-authority" not in cluster
    assert cluster["certificate-authority-data"] == "Q0E="


def test_it_says_connection_refused():
    health = check_health(GOOD)
    assert not health.reachable
    assert "connection refused" in health.message
    assert "127.0.0.1:9" in health.message


def test_it_says_when_the_server_does_not_answer(settings):
    settings.KUBE_TIMEOUT = 1
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(silent.accept()), daemon=True)
    thread.start()
    port = silent.getsockname()[1]
    try:
        health = check_health(GOOD.replace("127.0.0.1:9", f"127.0.0.1:{port}"))
    finally:
        silent.close()
    assert not health.reachable
    assert "did not answer within 1 seconds" in health.message


def test_it_never_repeats_the_token_in_a_message():
    health = check_health(UNREACHABLE_KUBECONFIG.format(token="SENTINEL-secret"))
    assert "SENTINEL" not in health.message
