from datetime import UTC, datetime, timedelta

import pytest

from backups.naming import backup_name, check_name, format_duration, parse_duration, split_list


def test_backup_names_follow_palette():
    at = datetime(2026, 11, 24, 23, 5, 9, tzinfo=UTC)
    assert backup_name("weekly", "cluster-a", at) == "weekly-cluster-a-20261124230509"


@pytest.mark.parametrize("name", ["Bad", "-x", "x-", "a_b", "a" * 64, ""])
def test_bad_names_are_explained(name):
    assert "63 lower-case" in check_name(name)


def test_good_names_pass():
    assert check_name("manual-cluster-a-20261124230509") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("720h", timedelta(hours=720)),
        ("1h30m", timedelta(minutes=90)),
        ("45s", timedelta(seconds=45)),
    ],
)
def test_durations_parse_like_velero(text, expected):
    assert parse_duration(text) == expected
    assert parse_duration(format_duration(expected)) == expected


@pytest.mark.parametrize("text", ["", "30d", "h", "12", "1h 2x"])
def test_bad_durations_are_refused(text):
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_lists_are_split_and_trimmed():
    assert split_list(" a, b,,c\nd ") == ["a", "b", "c", "d"]


def test_namespace_mappings_parse_and_explain_mistakes():
    from backups.naming import parse_mapping

    assert parse_mapping("shop=shop-copy, billing = billing2\nx=y") == {
        "shop": "shop-copy",
        "billing": "billing2",
        "x": "y",
    }
    for bad, reason in [
        ("shop", "source=target"),
        ("a=B_ad", "valid namespace"),
        ("a=b,a=c", "twice"),
    ]:
        with pytest.raises(ValueError, match=reason):
            parse_mapping(bad)
