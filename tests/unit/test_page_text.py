"""What the pages say reads as English (issue #15, Done-when 3): every page of the
persona matrix, as the admin and as the single-cluster grantee, holds no Python repr,
no duplicated adjacent word, no "(s)" plural and no raw Velero phase name.

The world is given the values that once leaked (a TTL without an expiry date, lists
and mappings, a parse error's class name, an offset on a date) before the walk."""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest

from backups.models import Backup, Restore, Schedule
from tests.unit.test_views_personas import CASES, OK

# Text inside these is data (names, YAML, commands), not the console's words.
SKIP = {"script", "style", "code", "pre", "textarea", "title", "time"}
BLOCK = {"td", "th", "tr", "li", "p", "div", "section", "h1", "h2", "h3", "dt", "dd",
         "option", "label", "button", "a", "summary", "nav", "header", "footer", "table",
         "ul", "ol", "form", "select", "br"}  # fmt: skip

REPRS = [
    re.compile(r"\d+ days?, \d+:\d\d:\d\d"),  # a timedelta
    re.compile(r"(?<![\d:])\d:\d\d:\d\d"),  # "0:00:00" (a clock time has two digits)
    re.compile(r"\[\s*'"),  # "['a']"
    re.compile(r"\{\s*'"),  # "{'shop': ...}"
    re.compile(r"\b[A-Z][a-z]+(?:[A-Z][a-z]+)*(Error|Exception)\b"),  # "ScannerError"
    re.compile(r"[+-]\d\d:\d\d\b"),  # "+00:00"
    re.compile(r"<\w[\w.]* object at 0x"),
    re.compile(r"(?<![\w-])None(?=$|[.,;:)\]])"),  # a None printed ("None selected" is English)
]
PHASES = re.compile(
    r"\b(PartiallyFailed|InProgress|FailedValidation|WaitingForPluginOperations\w*|Finalizing\w*)\b"
)
REPEAT = re.compile(
    r"\b([A-Za-z][A-Za-z:]{2,})\s+\1\b(?![-\w])", re.IGNORECASE
)  # "Restore restore-1" is a name


class Words(HTMLParser):
    """The page's visible words, one run of text per element."""

    def __init__(self):
        super().__init__()
        self.runs: list[str] = [""]
        self.skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in SKIP:
            self.skipping += 1
        if tag in BLOCK:
            self.runs.append("")

    def handle_endtag(self, tag):
        if tag in SKIP:
            self.skipping = max(self.skipping - 1, 0)
        if tag in BLOCK:
            self.runs.append("")

    def handle_data(self, data):
        if not self.skipping:
            self.runs[-1] += data


def runs_of(html: str) -> list[str]:
    parser = Words()
    parser.feed(html)
    return [" ".join(run.split()) for run in parser.runs if run.strip()]


def problems(html: str) -> list[str]:
    found = []
    runs = runs_of(html)
    for run in runs:
        found += [f"repr {m.group(0)!r} in {run!r}" for r in REPRS for m in r.finditer(run)]
        found += [f"phase {m.group(0)!r} in {run!r}" for m in PHASES.finditer(run)]
        found += [f"'(s)' in {run!r}" for _ in re.finditer(r"\w\(s\)", run)]
        found += [f"repeated {m.group(0)!r} in {run!r}" for m in REPEAT.finditer(run)]
    # Two neighbouring runs saying the same thing ("Available: Available: ...").
    for first, second in zip(runs, runs[1:], strict=False):
        head = first.split()[-1] if first.split() else ""
        if len(head) > 2 and second.lower().startswith(head.lower()) and head.endswith(":"):
            found.append(f"repeated {head!r} across {first!r} / {second!r}")
    return found


def leaky(world) -> None:
    """The values that used to show up as Python on the pages."""
    Backup.objects.filter(pk=world.backup.pk).update(
        expires_at=None, ttl=timedelta(days=30), include_namespaces=["shop", "web"],
        exclude_namespaces=["kube-system"], label_selector="app=shop", phase="PartiallyFailed",
        status="partially_failed", error="The location cannot be used: the bucket is gone.",
    )  # fmt: skip
    Restore.objects.filter(pk=world.restore.pk).update(
        namespace_mapping={"shop": "shop-copy"}, include_namespaces=["shop"], phase="InProgress",
        option_warnings=["ghost is not in the backup, so its mapping to g maps nothing."],
    )  # fmt: skip
    Schedule.objects.filter(pk=world.schedule.pk).update(
        include_namespaces=["shop"], exclude_namespaces=["web"], last_result="2 backups started"
    )


PAGES = [case for case in CASES if case.method == "get"]


@pytest.mark.parametrize("persona", ["admin", "cluster_grantee"])
def test_no_page_speaks_python(world, login, persona):
    leaky(world)
    client = login(world.users[persona])
    found = {}
    for case in PAGES:
        if case.expect[persona] != OK:
            continue
        response = client.get(case.url(world), case.data(world))
        if response.status_code != OK or "html" not in response.get("Content-Type", ""):
            continue
        if bad := problems(response.content.decode()):
            found[case.name] = bad
    assert not found, "\n".join(f"{name}: {line}" for name, bad in found.items() for line in bad)


@pytest.mark.parametrize(
    ("html", "bad"),
    [
        ("<p>Keep for 30 days, 0:00:00</p>", True),
        ("<td>['a', 'b']</td>", True),
        ("<td>{'shop': 'b'}</td>", True),
        ("<p>ScannerError: bad</p>", True),
        ("<p>2026-12-01 10:00+00:00</p>", True),
        ("<p>PartiallyFailed</p>", True),
        ("<p>3 item(s)</p>", True),
        ("<span class=badge>Completed</span> Completed", True),
        ("<p>backed up workspace workspace</p>", True),
        ("<dt>Status</dt><dd>Available:</dd><dd>Available: all good</dd>", True),
        ("<p>3 items, 2 backups</p><pre>a a ['x']</pre>", False),
        ("<td>Completed</td><td>Completed</td>", False),  # two rows' cells
    ],
)
def test_the_check_finds_what_it_should(html, bad):
    assert bool(problems(html)) is bad


def test_words_for_phases_durations_and_counts():
    from backups.engine.words import counted, duration_words, phase_words

    assert phase_words("PartiallyFailed") == "partially failed"
    assert phase_words("collecting namespaces") == "collecting namespaces"
    assert duration_words(30 * 86400) == "30 days"
    assert duration_words(86400 + 12 * 3600) == "1 day 12 hours"
    assert duration_words(5400) == "1 hour 30 minutes"
    assert (counted(1, "backup"), counted(2, "policy"), counted(0, "match")) == (
        "1 backup", "2 policies", "0 matches",
    )  # fmt: skip


def test_a_yaml_error_is_told_in_words():
    from backups.engine.kube.client import KubeconfigError, parse_kubeconfig

    with pytest.raises(KubeconfigError) as caught:
        parse_kubeconfig("a: b: c")
    assert "Error" not in str(caught.value) and "line 1" in str(caught.value)
