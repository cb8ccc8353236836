from backups.browse import MASK, as_yaml, mask_secret


def test_secret_values_are_masked_everywhere():
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "db",
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": '{"data":{"pw":"aHVudGVyMg=="}}',
                "team": "payments",
            },
        },
        "data": {"pw": "aHVudGVyMg=="},
        "stringData": {"user": "admin"},
    }
    text = as_yaml(secret)
    assert "aHVudGVyMg" not in text and "admin" not in text
    assert "pw:" in text and MASK in text and "payments" in text
    assert secret["data"]["pw"] == "aHVudGVyMg=="  # the original is untouched


def test_other_kinds_are_shown_as_they_are():
    config = {"kind": "ConfigMap", "data": {"a": "b"}}
    assert mask_secret(config) is config
