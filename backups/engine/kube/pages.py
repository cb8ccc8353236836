"""Split a LIST response into its items, keeping each item's JSON bytes as the
server sent them.

The archive holds "the compact JSON of the object as read": the server's own
bytes are exactly that, so the engine never re-encodes an object. It only
reads the few fields it filters on (name, namespace, labels, deletion) and
puts ``apiVersion`` and ``kind`` in front (a LIST's items lack them).

With ``msgspec`` installed the items are cut out of the page without building
Python objects for their contents (about ten times faster than ``json``);
without it, the standard library's scanner finds each item's bounds.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

try:  # optional speed-up
    import msgspec
except ImportError:  # pragma: no cover - depends on the environment
    msgspec = None


@dataclass(slots=True)
class Entry:
    raw: bytes  # the item's JSON as the server sent it
    name: str
    namespace: str
    labels: dict | None
    deleting: bool
    typed: bool  # already carries apiVersion and kind (custom resources do)


@dataclass(slots=True)
class Page:
    items: list[Entry]
    continue_token: str
    remaining: int | None
    api_version: str


def with_type(entry: Entry, prefix: bytes) -> bytes:
    """The item's bytes with ``apiVersion`` and ``kind`` first.

    ``prefix`` is ``{"apiVersion":"v1","kind":"ConfigMap",`` (see ``type_prefix``).
    """
    if entry.typed:
        return entry.raw
    body = entry.raw[1:].lstrip()
    if body.startswith(b"}"):
        return prefix[:-1] + body
    return prefix + body


def type_prefix(api_version: str, kind: str) -> bytes:
    return b'{"apiVersion":%s,"kind":%s,' % (
        json.dumps(api_version).encode(),
        json.dumps(kind).encode(),
    )


if msgspec is not None:

    class _Meta(msgspec.Struct):
        name: str = ""
        namespace: str = ""
        labels: dict[str, str] | None = None
        deletionTimestamp: str | None = None

    class _Item(msgspec.Struct):
        metadata: _Meta = msgspec.field(default_factory=_Meta)
        apiVersion: str = ""
        kind: str = ""

    class _ListMeta(msgspec.Struct):
        continue_: str = msgspec.field(default="", name="continue")
        remainingItemCount: int | None = None

    class _Page(msgspec.Struct):
        metadata: _ListMeta = msgspec.field(default_factory=_ListMeta)
        apiVersion: str = ""
        items: list[msgspec.Raw] | None = None

    class _PageToken(msgspec.Struct):
        metadata: _ListMeta = msgspec.field(default_factory=_ListMeta)

    _page_decoder = msgspec.json.Decoder(_Page)
    _token_decoder = msgspec.json.Decoder(_PageToken)

    def page_token(data: bytes) -> str:
        """Only the continue token of a page (the benchmark's floor needs no more)."""
        return _token_decoder.decode(data).metadata.continue_ or ""

    _item_decoder = msgspec.json.Decoder(_Item)

    def decode_page(data: bytes) -> Page:
        page = _page_decoder.decode(data)
        entries = []
        for raw in page.items or ():
            item = _item_decoder.decode(raw)
            meta = item.metadata
            entries.append(
                Entry(
                    bytes(raw),
                    meta.name,
                    meta.namespace,
                    meta.labels,
                    meta.deletionTimestamp is not None,
                    bool(item.apiVersion and item.kind),
                )
            )
        return Page(
            entries,
            page.metadata.continue_ or "",
            page.metadata.remainingItemCount,
            page.apiVersion,
        )

else:  # pragma: no cover - exercised when msgspec is absent
    _decoder = json.JSONDecoder()
    _WS = re.compile(r"[ \t\n\r]*")

    def _entry(obj: dict, raw: str) -> Entry:
        meta = obj.get("metadata") or {}
        return Entry(
            raw.encode(),
            meta.get("name", ""),
            meta.get("namespace", ""),
            meta.get("labels"),
            meta.get("deletionTimestamp") is not None,
            bool(obj.get("apiVersion") and obj.get("kind")),
        )

    def page_token(data: bytes) -> str:
        """Only the continue token of a page (the benchmark's floor needs no more)."""
        text = data.decode()
        raw_decode, skip = _decoder.raw_decode, _WS.match
        i = skip(text, 0).end() + 1
        while True:  # the server writes the list's metadata before its items
            i = skip(text, i).end()
            if text[i] == "}":
                return ""
            if text[i] == ",":
                i = skip(text, i + 1).end()
            key, i = raw_decode(text, i)
            i = skip(text, skip(text, i).end() + 1).end()
            value, i = raw_decode(text, i)
            if key == "metadata":
                return value.get("continue") or ""

    def decode_page(data: bytes) -> Page:
        text = data.decode()
        raw_decode, skip = _decoder.raw_decode, _WS.match
        fields: dict = {}
        entries: list[Entry] = []
        i = skip(text, 0).end()
        if text[i : i + 1] != "{":
            raise ValueError("a list response is not a JSON object")
        i += 1
        while True:
            i = skip(text, i).end()
            if text[i] == "}":
                break
            if text[i] == ",":
                i = skip(text, i + 1).end()
            key, i = raw_decode(text, i)
            i = skip(text, i).end() + 1  # the ':'
            i = skip(text, i).end()
            if key == "items" and text[i] == "[":
                i += 1
                while True:
                    i = skip(text, i).end()
                    if text[i] == "]":
                        i += 1
                        break
                    if text[i] == ",":
                        i += 1
                        continue
                    obj, end = raw_decode(text, i)
                    entries.append(_entry(obj, text[i:end]))
                    i = end
            else:
                fields[key], i = raw_decode(text, i)
        meta = fields.get("metadata") or {}
        return Page(
            entries,
            meta.get("continue") or "",
            meta.get("remainingItemCount"),
            fields.get("apiVersion", ""),
        )
