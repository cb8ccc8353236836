"""Seeding the large-cluster benchmarks' objects straight into cluster A's etcd.

Through the API server, seeding runs at about 100 objects/s on the shared two-core
machine (the API server, etcd and the controllers share what the other jobs leave), so
300,000 objects would take most of an hour. The API server keeps its objects in etcd
under ``/registry/...`` and reads JSON there as well as its own protobuf; its watch
cache takes every key written under its prefixes. So the bulk of the objects is written
to etcd directly, in transactions of ``TXN_OPS`` puts, as the API server would have
stored them:

* the namespaces go through the API (the controllers then add their own objects to each,
  as they do to any namespace), and so do the Services that take a cluster IP (their
  address is allocated by the API server, as an IPAddress object);
* every other object is made from a *template*: the object of the same place in the
  mix's cycle (``i % CYCLE``) that was created through the API into the first namespace,
  read back as the API server stores it (its defaults, ``managedFields`` of the create,
  ``generation``). The object's own fields (``scale_object(i)``) replace the
  template's; uid and creation time are new; a Deployment's status is left to the
  deployment controller (which also makes its ReplicaSet), as after a create.

``verify(...)`` checks that an object written this way is served like its twin created
through the API (same fields but name, uid, times, resourceVersion), and that the API
server lists and deletes it. ``clear_etcd(...)`` deletes the kinds written here by key
range before the namespaces are deleted through the API (the namespace controller would
otherwise delete 300,000 objects one request at a time).
"""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from devenv.scale_objects import CYCLE, PER_NAMESPACE, namespace_name, scale_object

TXN_OPS = 128  # etcd's default --max-txn-ops
ETCD_WORKERS = 4
# The API server's etcd keys (its default prefix /registry); a custom resource's key
# has its group in front.
KEYS = {
    "ConfigMap": "/registry/configmaps/{ns}/{name}",
    "Secret": "/registry/secrets/{ns}/{name}",
    "Service": "/registry/services/specs/{ns}/{name}",
    "ServiceAccount": "/registry/serviceaccounts/{ns}/{name}",
    "Deployment": "/registry/deployments/{ns}/{name}",
    "Role": "/registry/roles/{ns}/{name}",
    "RoleBinding": "/registry/rolebindings/{ns}/{name}",
    "Widget": "/registry/demo.palette.io/widgets/{ns}/{name}",
}
# Kinds whose keys in a benchmark namespace are all deleted by range at clean-up: the
# API server allocates nothing for them (Services are deleted through the API: their
# cluster IPs must be released).
RANGE_DELETED = ("ConfigMap", "Secret", "ServiceAccount", "Deployment", "Role", "RoleBinding",
                 "Widget")  # fmt: skip


def through_api(i: int, obj: dict | None = None) -> bool:
    """Whether object ``i`` must be created through the API server: a Service that
    takes a cluster IP (headless ones take none)."""
    obj = obj or scale_object(i, "x")
    return obj["kind"] == "Service" and obj["spec"].get("clusterIP") != "None"


class Etcd:
    """A gRPC channel to cluster A's etcd (its client certificate, from .devenv/env)."""

    def __init__(self, env: dict, cluster: str = "A"):
        import grpc
        from aetcd import rpc

        from backups.engine.etcd.tls import parse_endpoints

        p = f"CLUSTER_{cluster}_ETCD_"
        endpoint = parse_endpoints(env[p + "ENDPOINT"])[0]
        self.rpc = rpc
        if endpoint.tls:
            creds = grpc.ssl_channel_credentials(
                root_certificates=_read(env[p + "CA"]),
                private_key=_read(env[p + "KEY"]),
                certificate_chain=_read(env[p + "CERT"]),
            )
            self.channel = grpc.secure_channel(endpoint.target, creds)
        else:
            self.channel = grpc.insecure_channel(endpoint.target)
        self.kv = rpc.KVStub(self.channel)

    def put_all(self, pairs: list[tuple[bytes, bytes]]) -> None:
        rpc = self.rpc
        ops = [rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=v)) for k, v in pairs]
        self.kv.Txn(rpc.TxnRequest(success=ops), timeout=60)

    def get(self, key: bytes) -> bytes | None:
        resp = self.kv.Range(self.rpc.RangeRequest(key=key), timeout=30)
        return resp.kvs[0].value if resp.kvs else None

    def delete_prefix(self, prefix: bytes) -> int:
        end = prefix[:-1] + bytes([prefix[-1] + 1])
        resp = self.kv.DeleteRange(self.rpc.DeleteRangeRequest(key=prefix, range_end=end),
                                   timeout=120)  # fmt: skip
        return resp.deleted

    def close(self) -> None:
        self.channel.close()


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _merge(base, own):
    """``own`` over ``base``: dicts key by key, lists of equal length item by item."""
    if isinstance(base, dict) and isinstance(own, dict):
        out = dict(base)
        for key, value in own.items():
            out[key] = _merge(base[key], value) if key in base else value
        return out
    if isinstance(base, list) and isinstance(own, list) and len(base) == len(own):
        return [_merge(b, o) for b, o in zip(base, own, strict=True)]
    return own


def template_of(served: dict) -> dict:
    """What of an object created through the API stands for its place in the cycle: the
    stored form without what belongs to that one object or to later controllers."""
    obj = copy.deepcopy(served)
    meta = obj["metadata"]
    for field in ("uid", "resourceVersion", "creationTimestamp", "labels", "annotations",
                  "name", "namespace"):  # fmt: skip
        meta.pop(field, None)
    # only the create's entry: later ones are the controllers' (a Deployment's status)
    meta["managedFields"] = [
        m for m in meta.get("managedFields") or () if m.get("operation") == "Update"
        and not m.get("subresource")
        and m.get("manager") != "kube-controller-manager"
    ][:1]  # fmt: skip
    if obj["kind"] == "Deployment":
        obj.pop("status", None)
    return obj


def stored_object(i: int, prefix: str, template: dict, now: str) -> dict:
    """Object ``i`` as the API server would have stored it on create."""
    own = scale_object(i, prefix)
    obj = _merge(template, own)
    meta = obj["metadata"]
    meta["uid"] = str(uuid.uuid4())
    meta["creationTimestamp"] = now
    fields = json.dumps(template["metadata"]["managedFields"])
    if own["kind"] == "Deployment":  # the container's name is a key in the field set
        was = template["spec"]["template"]["spec"]["containers"][0]["name"]
        now_name = own["spec"]["template"]["spec"]["containers"][0]["name"]
        fields = fields.replace(_list_key(was), _list_key(now_name))
    meta["managedFields"] = [{**m, "time": now} for m in json.loads(fields)]
    return obj


def _list_key(name: str) -> str:
    """How a list item keyed by name appears in managedFields, inside JSON text."""
    return json.dumps("k:" + json.dumps({"name": name}, separators=(",", ":")))[1:-1]


def etcd_key(obj: dict) -> bytes:
    meta = obj["metadata"]
    return KEYS[obj["kind"]].format(ns=meta["namespace"], name=meta["name"]).encode()


def read_templates(kube, prefix: str) -> dict[int, dict]:
    """The first CYCLE objects of ``<prefix>-0000`` as served (created through the API)."""
    from benchmarks.scale import PATHS

    templates = {}
    for i in range(CYCLE):
        obj = scale_object(i, prefix)
        meta = obj["metadata"]
        path = PATHS[obj["kind"]].format(ns=meta["namespace"]) + "/" + meta["name"]
        templates[i] = template_of(kube.get_json(path))
    return templates


def write_objects(etcd: Etcd, indices: list[int], prefix: str, templates: dict[int, dict],
                  log=print) -> int:  # fmt: skip
    """Put objects ``indices`` (none of them ``through_api``) into etcd; how many."""
    now = _now()
    done = [0]
    lock = threading.Lock()
    started = time.monotonic()

    def batch(chunk: list[int]) -> None:
        pairs = []
        for i in chunk:
            obj = stored_object(i, prefix, templates[i % CYCLE], now)
            pairs.append((etcd_key(obj), json.dumps(obj, separators=(",", ":")).encode()))
        etcd.put_all(pairs)
        with lock:
            before, done[0] = done[0], done[0] + len(chunk)
            if before // 20000 != done[0] // 20000 or done[0] == len(indices):
                rate = done[0] / (time.monotonic() - started)
                log(f"    {done[0]}/{len(indices)} objects into etcd ({rate:.0f}/s)")

    chunks = [indices[k : k + TXN_OPS] for k in range(0, len(indices), TXN_OPS)]
    with ThreadPoolExecutor(max_workers=ETCD_WORKERS) as pool:
        list(pool.map(batch, chunks))
    return done[0]


def clear_etcd(etcd: Etcd, namespaces: list[str]) -> int:
    """Delete, by key range, the kinds written to etcd in ``namespaces``; how many keys."""
    prefixes = [
        KEYS[kind].format(ns=ns, name="").encode() for ns in namespaces for kind in RANGE_DELETED
    ]
    with ThreadPoolExecutor(max_workers=ETCD_WORKERS) as pool:
        return sum(pool.map(etcd.delete_prefix, prefixes))


def first_namespace_indices(objects: int) -> range:
    return range(min(objects, PER_NAMESPACE))


def namespace_indices(k: int, objects: int) -> range:
    return range(k * PER_NAMESPACE, min(objects, (k + 1) * PER_NAMESPACE))


# --- the check that the API server serves them as created ones -------------------------


def comparable(obj: dict) -> dict:
    """An object without what differs between two creates of it: uid, resourceVersion,
    times, and what the controllers add later (a Deployment's status and revision)."""
    obj = copy.deepcopy(obj)
    meta = obj["metadata"]
    for field in ("uid", "resourceVersion", "creationTimestamp"):
        meta.pop(field, None)
    (meta.get("annotations") or {}).pop("deployment.kubernetes.io/revision", None)
    meta["managedFields"] = [
        {k: v for k, v in m.items() if k != "time"}
        for m in meta.get("managedFields") or ()
        if m.get("manager") != "kube-controller-manager"
    ]
    if obj["kind"] == "Deployment":
        obj.pop("status", None)
    return obj


def verify(kube, etcd: Etcd, prefix: str, k: int, objects: int, log=print) -> list[str]:
    """Problems found with the etcd-written objects of namespace ``k`` (one of each place
    in the cycle): each is listed and served, deleted through the API, created again
    through the API, and the two served forms must be equal but for ``comparable``."""
    from benchmarks.scale import PATHS, _target

    target = _target(kube)
    problems = []
    picked = [i for i in namespace_indices(k, objects)[:CYCLE] if not through_api(i)]
    ns = namespace_name(k, prefix)
    listed: dict[str, set[str]] = {}
    for kind in {scale_object(i, prefix)["kind"] for i in picked}:
        doc = kube.get_json(PATHS[kind].format(ns=ns), {"limit": 500})
        listed[kind] = {item["metadata"]["name"] for item in doc.get("items") or ()}
    written = {}
    for i in picked:
        obj = scale_object(i, prefix)
        kind, name = obj["kind"], obj["metadata"]["name"]
        path = PATHS[kind].format(ns=ns)
        if name not in listed[kind]:
            problems.append(f"{kind} {name} written to etcd is not listed")
        written[i] = kube.get_json(f"{path}/{name}")
        gone = target.request("DELETE", f"{path}/{name}")
        if gone.status != 200:
            problems.append(f"deleting {kind} {name} answered {gone.status}")
    for i in picked:
        obj = scale_object(i, prefix)
        path = PATHS[obj["kind"]].format(ns=ns)
        for _ in range(50):  # a delete with finalizers may take a moment
            made = target.request("POST", path, obj)
            if made.status != 409:
                break
            time.sleep(0.2)
        if made.status != 201:
            problems.append(f"creating {obj['kind']} {obj['metadata']['name']}: {made.status}")
            continue
        created = kube.get_json(f"{path}/{obj['metadata']['name']}")
        a, b = comparable(written[i]), comparable(created)
        if a != b:
            problems.append(f"{obj['kind']} {obj['metadata']['name']}: etcd {a} != API {b}")
    log(f"  checked {len(picked)} etcd-written objects of {ns} against API creates: "
        f"{len(problems)} problems")  # fmt: skip
    return problems
