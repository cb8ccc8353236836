"""Resource modifiers: rules that change objects as they are restored, in Velero's format.

A rule set is YAML (or JSON) text, as Velero reads it from its ConfigMap::

    version: v1
    resourceModifierRules:
    - conditions:
        groupResource: persistentvolumeclaims     # globs: "*", "*.apps"
        resourceNameRegex: "^db-.*$"
        namespaces: [shop]                        # the backup's namespaces
        labelSelector: {matchLabels: {tier: db}}
        matches:                                  # every path must hold the value
        - path: /spec/storageClassName
          value: standard
      patches:                                    # JSON Patch (RFC 6902)
      - operation: replace
        path: /spec/storageClassName
        value: premium
      mergePatches:                               # JSON merge patch (RFC 7386)
      - patchData: '{"metadata": {"annotations": {"old": null}}}'

Velero's facts kept here: a rule's ``namespaces`` are the namespaces as they are
in the backup, not their mapped names, and a cluster-scoped object matches no rule
that lists namespaces; a patch's ``value`` is JSON when it parses as JSON (``"1"``
is the number 1) and a plain string otherwise; a ``test`` operation that fails
makes its rule not apply (no error); a rule holds one kind of patch (``patches``
or ``mergePatches``: Velero refuses a rule with both, so does the console); every
rule's conditions are matched against the object as it was before any rule, and
the matching rules' patches apply in their order, each to the result of the one
before. Strategic merge patches (``strategicPatches``) need the Go types of each
kind, which the console does not have: a rule set with one is refused, with a
message saying what to write instead.

The same rules, applied by ``Modifiers.apply`` after sanitizing, shape both a
preview's dry run and the restore, so the preview shows what the restore does.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
from dataclasses import dataclass

import jsonpatch
import jsonpointer
import yaml

from backups.engine.filters import FilterError, selector_matches

VERSION = "v1"
OPERATIONS = ("add", "remove", "replace", "move", "copy", "test")
MAX_TEXT = 256 * 1024


class ModifierError(FilterError):
    """A rule set that cannot be used, or a patch that cannot apply to an object."""


def _value(raw):
    """Velero's patch value: JSON when the text parses as JSON, else the text itself."""
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


@dataclass(frozen=True)
class Rule:
    number: int  # 1-based, for messages
    group_resource: str
    name_regex: re.Pattern | None
    namespaces: tuple[str, ...]
    selector: dict
    matches: tuple[tuple[str, object], ...]
    patches: tuple[dict, ...]
    merge_patches: tuple[dict, ...]

    def selects(self, group_resource: str, source_namespace: str, obj: dict) -> bool:
        if not fnmatch.fnmatchcase(group_resource, self.group_resource):
            return False
        meta = obj.get("metadata") or {}
        if self.name_regex is not None and not self.name_regex.search(str(meta.get("name", ""))):
            return False
        if self.namespaces and source_namespace not in self.namespaces:
            return False
        if self.selector and not selector_matches(self.selector, meta.get("labels")):
            return False
        for path, wanted in self.matches:
            try:
                if jsonpointer.resolve_pointer(obj, path) != wanted:
                    return False
            except jsonpointer.JsonPointerException:
                return False
        return True

    def describe(self) -> str:
        steps = [f"{p['op']} {p['path']}" for p in self.patches]
        steps += ["merge patch"] * len(self.merge_patches)
        return f"rule {self.number} ({', '.join(steps)})"


def _merge(target, patch):
    """RFC 7386: null removes, objects merge, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


@dataclass(frozen=True)
class Modifiers:
    rules: tuple[Rule, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.rules)

    def apply(self, group_resource: str, source_namespace: str, obj: dict) -> tuple[dict, list]:
        """(the changed object, one note per rule applied). Raises ModifierError when a
        rule's patch cannot apply to this object (a path that is not there)."""
        notes = []
        original = obj  # what every rule's conditions see (patches never change it)
        for rule in self.rules:
            if not rule.selects(group_resource, source_namespace, original):
                continue
            try:
                changed = jsonpatch.apply_patch(obj, list(rule.patches)) if rule.patches else obj
            except jsonpatch.JsonPatchTestFailed:
                continue  # Velero: a failed test means the rule does not apply
            except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
                raise ModifierError(
                    f"Resource modifier rule {rule.number} failed: {exc}."
                ) from None
            for merge in rule.merge_patches:
                changed = _merge(changed, merge)
            obj = changed
            notes.append(f"Modified by resource modifier {rule.describe()}.")
        return obj, notes


# --- parsing ------------------------------------------------------------------------------


def _load(text: str) -> dict:
    if len(text) > MAX_TEXT:
        raise ModifierError(f"The resource modifiers are longer than {MAX_TEXT // 1024} KB.")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1})" if where is not None else ""
        raise ModifierError(f"The resource modifiers are not valid YAML{at}.") from None
    if not isinstance(doc, dict):
        raise ModifierError("The resource modifiers must be a mapping with resourceModifierRules.")
    return doc


def _strings(value, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ModifierError(f"{what} must be a list of names.")
    return tuple(value)


def _patch(number: int, raw) -> dict:
    if not isinstance(raw, dict):
        raise ModifierError(f"Rule {number}: each patch needs an operation and a path.")
    op, path = raw.get("operation"), raw.get("path")
    if op not in OPERATIONS:
        raise ModifierError(
            f"Rule {number}: the operation {op!r} is not one of {', '.join(OPERATIONS)}."
        )
    if not isinstance(path, str) or not (path == "" or path.startswith("/")):
        raise ModifierError(f"Rule {number}: the path {path!r} is not a JSON pointer (/a/b).")
    patch = {"op": op, "path": path}
    if op in ("move", "copy"):
        if not isinstance(raw.get("from"), str):
            raise ModifierError(f"Rule {number}: {op} needs a 'from' path.")
        patch["from"] = raw["from"]
    elif op != "remove":
        if "value" not in raw:
            raise ModifierError(f"Rule {number}: {op} {path} needs a value.")
        patch["value"] = _value(raw["value"])
    return patch


def _merge_patch(number: int, raw) -> dict:
    data = raw.get("patchData") if isinstance(raw, dict) else None
    if isinstance(data, str):
        try:
            data = yaml.safe_load(data)
        except yaml.YAMLError:
            data = None
    if not isinstance(data, dict):
        raise ModifierError(f"Rule {number}: each merge patch needs patchData, a JSON object.")
    return data


def _rule(number: int, raw) -> Rule:
    if not isinstance(raw, dict):
        raise ModifierError(f"Rule {number} is not a mapping.")
    if raw.get("strategicPatches"):
        raise ModifierError(
            f"Rule {number} has strategicPatches: the console cannot apply strategic merge "
            "patches (they need each kind's Go schema). Write it as mergePatches (a JSON "
            "merge patch) or as patches (JSON Patch)."
        )
    conditions = raw.get("conditions")
    if not isinstance(conditions, dict) or not isinstance(conditions.get("groupResource"), str):
        raise ModifierError(f"Rule {number} needs conditions with a groupResource.")
    regex = conditions.get("resourceNameRegex") or None
    try:
        name_regex = re.compile(regex) if regex else None
    except (re.error, TypeError):
        raise ModifierError(f"Rule {number}: resourceNameRegex {regex!r} is not valid.") from None
    selector = conditions.get("labelSelector") or {}
    if not isinstance(selector, dict):
        raise ModifierError(f"Rule {number}: labelSelector must be matchLabels/matchExpressions.")
    matches = []
    for match in conditions.get("matches") or ():
        if not isinstance(match, dict) or not isinstance(match.get("path"), str):
            raise ModifierError(f"Rule {number}: each match needs a path and a value.")
        matches.append((match["path"], _value(match.get("value"))))
    patches = tuple(_patch(number, p) for p in raw.get("patches") or ())
    merges = tuple(_merge_patch(number, m) for m in raw.get("mergePatches") or ())
    if not patches and not merges:
        raise ModifierError(f"Rule {number} has no patches and no mergePatches.")
    if patches and merges:
        raise ModifierError(
            f"Rule {number} has both patches and mergePatches: a rule holds one kind of "
            "patch (Velero refuses the mix too). Write them as two rules with the same "
            "conditions."
        )
    return Rule(
        number=number,
        group_resource=conditions["groupResource"].strip().lower(),
        name_regex=name_regex,
        namespaces=_strings(conditions.get("namespaces"), f"Rule {number}: namespaces"),
        selector=selector,
        matches=tuple(matches),
        patches=patches,
        merge_patches=merges,
    )


def parse(text: str) -> Modifiers:
    """The rules of a rule set's text ("" gives no rules); ModifierError says what is wrong."""
    if not (text or "").strip():
        return Modifiers()
    doc = _load(text)
    if str(doc.get("version", "")) != VERSION:
        raise ModifierError(f"The resource modifiers need 'version: {VERSION}'.")
    rules = doc.get("resourceModifierRules")
    if not isinstance(rules, list) or not rules:
        raise ModifierError("The resource modifiers list no resourceModifierRules.")
    return Modifiers(tuple(_rule(n, raw) for n, raw in enumerate(rules, start=1)))
