"""References to namespaces inside objects, made to follow a restore's namespace mapping.

With ``a -> b``, an object restored into ``b`` that still names ``a`` points back at
the original: a binding's subject, a PV's claim, an operator's
``alertmanagers[].namespace``, a NetworkPolicy or webhook selecting
``kubernetes.io/metadata.name: a``. Outside ``metadata`` (whose namespace the
sanitizer sets), every one of these is rewritten:

* a field named ``namespace`` whose value is a mapped namespace;
* a field named ``namespaces`` holding a list of names (each mapped one);
* a label selector on ``kubernetes.io/metadata.name`` (``matchLabels``, and the
  values of ``matchExpressions`` on that key).

The data of ConfigMaps and Secrets is left alone (it is the application's text,
not a reference). Each rewrite is reported as ``path: a -> b``, so a preview
lists them object by object.
"""

from __future__ import annotations

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
_OPAQUE = {"configmaps": ("data", "binaryData"), "secrets": ("data", "stringData")}


def _path(path: str, key) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else key)


class _Rewriter:
    def __init__(self, mapping: dict[str, str]):
        self.mapping = mapping
        self.notes: list[str] = []

    def name(self, value, path: str):
        if isinstance(value, str) and value in self.mapping:
            self.notes.append(f"{path}: {value} -> {self.mapping[value]}")
            return self.mapping[value]
        return value

    def selector(self, node: dict, path: str) -> None:
        labels = node.get("matchLabels")
        if isinstance(labels, dict) and NAMESPACE_NAME_LABEL in labels:
            where = _path(_path(path, "matchLabels"), f'"{NAMESPACE_NAME_LABEL}"')
            labels[NAMESPACE_NAME_LABEL] = self.name(labels[NAMESPACE_NAME_LABEL], where)
        for index, expr in enumerate(node.get("matchExpressions") or ()):
            if isinstance(expr, dict) and expr.get("key") == NAMESPACE_NAME_LABEL:
                values = expr.get("values")
                if isinstance(values, list):
                    where = _path(_path(path, "matchExpressions"), index) + ".values"
                    expr["values"] = [self.name(v, where) for v in values]

    def walk(self, node, path: str) -> None:
        if isinstance(node, dict):
            self.selector(node, path)
            for key, value in node.items():
                here = _path(path, key)
                if key == "namespace" and isinstance(value, str):
                    node[key] = self.name(value, here)
                elif key == "namespaces" and isinstance(value, list):
                    node[key] = [self.name(v, here) for v in value]
                else:
                    self.walk(value, here)
        elif isinstance(node, list):
            for index, value in enumerate(node):
                self.walk(value, _path(path, index))


def rewrite(group_resource: str, obj: dict, mapping: dict[str, str]) -> list[str]:
    """Rewrite ``obj`` in place (everything but ``metadata``); the rewrites made."""
    if not mapping:
        return []
    rewriter = _Rewriter(mapping)
    opaque = _OPAQUE.get(group_resource, ())
    for key, value in obj.items():
        if key not in ("metadata", "status", *opaque):
            rewriter.walk(value, key)
    return rewriter.notes
