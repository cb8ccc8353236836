"""The guided restore of an etcd snapshot: the exact steps, with the snapshot's values.

``runbook(snapshot)`` returns Steps (title, explanation, commands) that a person
runs top to bottom: download, verify, copy to the members, stop the API servers
and controller managers, stop etcd, ``etcdutl snapshot restore`` with
``--bump-revision`` and ``--mark-compacted`` into a new data directory on each
member, swap it in and start etcd, start the API servers, check.

What the console knows is filled in: the object's key and the location's
store, the sha256, the revision, the endpoint, and the members' names and peer
URLs (asked from etcd's MemberList when the endpoint answers). What it cannot
know is an obvious placeholder in angle brackets, e.g. ``<member-name>``.

Commands assume a kubeadm-style control plane (static pods in
/etc/kubernetes/manifests, data in /var/lib/etcd); each step's explanation
gives the systemd equivalent. The local restore (``restore.py``) carries out
the same steps, by the same keys, on a control plane the console runs itself.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from backups.engine.etcd.client import EtcdError, members_of, parse_endpoints
from backups.engine.storage.layout import Layout
from backups.engine.words import counted

BUMP_REVISION = 1_000_000
DEFAULT_DATA_DIR = "/var/lib/etcd"
MANIFESTS = "/etc/kubernetes/manifests"
STOPPED = "/etc/kubernetes/manifests.stopped"
CONTROL_PLANE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")

# Step keys, shared with the local restore so its log reads like the runbook.
DOWNLOAD, VERIFY, COPY = "download", "verify", "copy"
STOP_APISERVERS, STOP_ETCD, RESTORE = "stop-apiservers", "stop-etcd", "restore"
START_ETCD, START_APISERVERS, CHECK = "start-etcd", "start-apiservers", "check"
TITLES = {
    DOWNLOAD: "Download the snapshot",
    VERIFY: "Verify the file",
    COPY: "Copy the snapshot to every etcd member",
    STOP_APISERVERS: "Stop the API servers and controller managers",
    STOP_ETCD: "Stop etcd on every member",
    RESTORE: "Restore into a new data directory on each member",
    START_ETCD: "Swap in the restored data and start etcd",
    START_APISERVERS: "Start the API servers and controller managers",
    CHECK: "Check the cluster",
}


@dataclass
class Step:
    key: str
    explanation: str
    commands: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return TITLES[self.key]


@dataclass(frozen=True)
class _Member:
    name: str
    peer_urls: tuple[str, ...]
    host: str
    known: bool


def each_member(n: int) -> str:
    """The members to act on, in words: the member, or each of the 3 members."""
    return "the member" if n == 1 else f"each of the {counted(n, 'member')}"


def q(value: str) -> str:
    """Shell-quote a value, leaving placeholders like <member-name> readable."""
    if value.startswith("<") and value.endswith(">") and "'" not in value:
        return value
    return shlex.quote(value)


def runbook(
    snapshot,
    *,
    etcd=None,
    members: list[dict] | None = None,
    download_url: str = "",
    data_dir: str = DEFAULT_DATA_DIR,
) -> list[Step]:
    """The restore procedure for ``snapshot`` (what was stored: name, object_key,
    sha256, revision, size_bytes, member, created_at, cluster_name, and its
    ``location``'s provider, bucket, endpoint_url, region, path...).

    ``members``: dicts with ``name`` and ``peer_urls`` (``Member.as_dict()``);
    None asks ``etcd`` (an ``EtcdEndpoint``; 3 s at most; placeholders if it does
    not answer or is None), ``[]`` never asks. ``download_url``: the console's
    download link, shown in the first step when given.
    """
    notes: list[str] = []
    if members is None:
        members = _ask_members(etcd, notes)
    plan = _members(members, snapshot)
    file = f"{snapshot.name}.db"
    on_member = f"/var/tmp/{file}"  # noqa: S108 (printed for the members; not used here)
    restored = f"{data_dir.rstrip('/')}.restored"
    before = f"{data_dir.rstrip('/')}.before-restore"
    steps = [
        _download(snapshot, file, download_url, notes),
        _verify(snapshot, file),
        _copy(plan, file, on_member),
        _stop_apiservers(),
        _stop_etcd(plan),
        _restore(plan, on_member, restored),
        _start_etcd(etcd, plan, data_dir, restored, before),
        _start_apiservers(),
        _check(snapshot),
    ]
    return steps


# --- the values ----------------------------------------------------------------------------


def _ask_members(etcd, notes: list[str]) -> list[dict]:
    if etcd is None or not etcd.endpoint:
        return []
    try:
        return [m.as_dict() for m in members_of(etcd) if not m.is_learner]
    except EtcdError as err:
        notes.append(
            f"The console could not ask etcd for its members ({err}), so member names and "
            "peer URLs are placeholders: take them from `etcdctl member list` or each "
            "member's --name and --initial-advertise-peer-urls."
        )
        return []


def _members(members: list[dict], snapshot) -> list[_Member]:
    plan = []
    for m in members:
        if m.get("is_learner"):
            continue  # learners are added back with `member add --learner` afterwards
        urls = tuple(m.get("peer_urls") or m.get("peerURLs") or ())
        name = m.get("name") or "<member-name>"
        host = urlsplit(urls[0]).hostname if urls else None
        plan.append(_Member(name, urls or ("<peer-url>",), host or "<member-host>", bool(urls)))
    if not plan:
        name = snapshot.member if snapshot.member and not _is_hex(snapshot.member) else ""
        plan.append(
            _Member(name or "<member-name>", ("https://<member-ip>:2380",), "<member-host>", False)
        )
    return plan


def _is_hex(text: str) -> bool:
    return len(text) >= 8 and all(c in "0123456789abcdef" for c in text)


def _initial_cluster(plan: list[_Member]) -> str:
    return ",".join(f"{m.name}={url}" for m in plan for url in m.peer_urls)


def _object_key(snapshot) -> str:
    return snapshot.object_key or Layout(snapshot.location.prefix).etcd_file(
        snapshot.cluster_name, snapshot.name
    )


def _size(snapshot) -> str:
    if not snapshot.size_bytes:
        return ""
    return f" ({snapshot.size_bytes / 1024 / 1024:.1f} MiB)"


# --- the steps -----------------------------------------------------------------------------


def _download(snapshot, file: str, download_url: str, notes: list[str]) -> Step:
    location = snapshot.location
    key = _object_key(snapshot)
    commands, how = _store_commands(location, key, file)
    text = [
        f"Fetch {key}{_size(snapshot)} from location {location.name} "
        f"({location.get_provider_display()}) to a machine that can reach the etcd members. {how}"
    ]
    if download_url:
        text.append(f"Or download it from the console: {download_url} (save it as {file}).")
    text += notes
    return Step(DOWNLOAD, " ".join(text), commands)


def _store_commands(location, key: str, file: str) -> tuple[list[str], str]:
    provider, bucket = location.provider, location.bucket
    endpoint = location.endpoint_url
    if provider == "s3":
        cmd = f"aws s3 cp {q(f's3://{bucket}/{key}')} {q(file)}"
        if location.region:
            cmd += f" --region {q(location.region)}"
        if endpoint:
            cmd += f" --endpoint-url {q(endpoint)}"
        how = "With the AWS CLI and credentials that may read the bucket"
        if location.credential_mode == "sts" and location.role_arn:
            how += f" (for example a profile that assumes {location.role_arn})"
        return [cmd], how + "."
    if provider == "minio":
        return [
            f"mc alias set palette {q(endpoint or '<minio-url>')} <access-key> <secret-key>",
            f"mc cp {q(f'palette/{bucket}/{key}')} {q(file)}",
        ], "With the MinIO client (or `aws s3 cp` with --endpoint-url)."
    if provider == "gcs":
        return [f"gcloud storage cp {q(f'gs://{bucket}/{key}')} {q(file)}"], (
            "With the gcloud CLI logged in as an account that may read the bucket."
        )
    if provider == "azure":
        creds = location.credentials or {}
        account = creds.get("account_name") or _account_from(creds.get("connection_string", ""))
        cmd = (
            f"az storage blob download --account-name {q(account or '<storage-account>')} "
            f"--account-key <account-key> --container-name {q(bucket)} "
            f"--name {q(key)} --file {q(file)}"
        )
        if endpoint:
            cmd += f" --blob-endpoint {q(endpoint)}"
        return [cmd], "With the Azure CLI."
    source = f"{location.path.rstrip('/')}/{key}"
    return [f"cp {q(source)} {q(file)}"], (
        "The location is a directory on the console's machine: copy it from there "
        "(with scp when you work elsewhere)."
    )


def _account_from(connection_string: str) -> str:
    for part in connection_string.split(";"):
        name, _, value = part.partition("=")
        if name.strip().lower() == "accountname":
            return value.strip()
    return ""


def _verify(snapshot, file: str) -> Step:
    commands = []
    if snapshot.sha256:
        commands.append(f"echo {q(f'{snapshot.sha256}  {file}')} | sha256sum --check -")
    commands.append(f"etcdutl snapshot status {q(file)} -w table")
    text = "sha256sum must print OK: the file is the one the console stored."
    if not snapshot.sha256:
        text = "This snapshot has no recorded sha256 (it did not complete): do not restore it."
    revision = (
        f"REVISION {snapshot.revision} or a little higher (the revision when the snapshot started)"
        if snapshot.revision
        else "the revision"
    )
    taken = f"{snapshot.created_at:%Y-%m-%d %H:%M} UTC" if snapshot.created_at else ""
    source = " ".join(
        part
        for part in (
            f"taken {taken}" if taken else "",
            f"from member {snapshot.member}" if snapshot.member else "",
            f"running etcd {snapshot.etcd_version}" if snapshot.etcd_version else "",
        )
        if part
    )
    text += f" etcdutl must read the database and show {revision}, its keys and size." + (
        f" The snapshot was {source}." if source else ""
    )
    return Step(VERIFY, text, commands)


def _copy(plan: list[_Member], file: str, on_member: str) -> Step:
    commands = [f"scp {q(file)} {q(m.host)}:{on_member}" for m in plan]
    text = (
        f"Every member restores from the same file. Put it at {on_member} on "
        f"{each_member(len(plan))}"
        + ("." if all(m.known for m in plan) else " (fill in each member's host).")
    )
    return Step(COPY, text, commands)


def _stop_apiservers() -> Step:
    manifests = " ".join(f"{MANIFESTS}/{c}.yaml" for c in CONTROL_PLANE)
    return Step(
        STOP_APISERVERS,
        "On every control-plane node, so that nothing writes to etcd while it is replaced. "
        "kubeadm runs them as static pods: moving the manifests away stops them within "
        "about 20 seconds (the second command must then list nothing). With systemd units: "
        "`sudo systemctl stop kube-apiserver kube-controller-manager kube-scheduler`.",
        [
            f"sudo mkdir -p {STOPPED} && sudo mv {manifests} {STOPPED}/",
            "sudo crictl ps --name 'kube-apiserver|kube-controller-manager|kube-scheduler'",
        ],
    )


def _stop_etcd(plan: list[_Member]) -> Step:
    return Step(
        STOP_ETCD,
        f"On {each_member(len(plan))}, after every API server is down. With systemd: "
        "`sudo systemctl stop etcd`.",
        [
            f"sudo mkdir -p {STOPPED} && sudo mv {MANIFESTS}/etcd.yaml {STOPPED}/",
            "sudo crictl ps --name etcd",
        ],
    )


def _restore(plan: list[_Member], on_member: str, restored: str) -> Step:
    initial = _initial_cluster(plan)
    commands = []
    for m in plan:
        commands.append(
            f"# on {m.name} ({m.host})\n"
            f"sudo etcdutl snapshot restore {on_member} \\\n"
            f"  --data-dir {q(restored)} \\\n"
            f"  --name {q(m.name)} \\\n"
            f"  --initial-cluster {q(initial)} \\\n"
            f"  --initial-advertise-peer-urls {q(','.join(m.peer_urls))} \\\n"
            f"  --bump-revision {BUMP_REVISION} \\\n"
            f"  --mark-compacted"
        )
    return Step(
        RESTORE,
        "Each member gets its own --name and peer URL, and all use the same "
        "--initial-cluster, so they form one new cluster. etcdutl checks the checksum at "
        f"the end of the file. --bump-revision {BUMP_REVISION} puts the revision far above "
        "anything a client has seen and --mark-compacted makes every watcher (the API "
        "servers' caches, controllers) list again instead of resuming from revisions that no "
        f"longer exist. The current data directory is not touched: {restored} is new (it "
        "must not exist yet).",
        commands,
    )


def _start_etcd(etcd, plan, data_dir: str, restored: str, before: str) -> Step:
    endpoint_text = etcd.endpoint if etcd is not None else ""
    try:
        endpoints = ",".join(e.url for e in parse_endpoints(endpoint_text))
        tls = any(e.tls for e in parse_endpoints(endpoint_text))
    except EtcdError:
        endpoints, tls = "<etcd-endpoint>", True
    certs = " --cacert <etcd-ca.crt> --cert <client.crt> --key <client.key>" if tls else ""
    etcdctl = f"etcdctl --endpoints {q(endpoints)}{certs}"
    return Step(
        START_ETCD,
        f"On each member: keep the old data as {before} (delete it once the cluster is "
        "healthy), put the restored directory in its place and start etcd. With systemd: "
        f"`sudo chown -R etcd:etcd {data_dir}` if etcd runs as its own user, then "
        "`sudo systemctl start etcd`. The last two commands (anywhere) must show every "
        "member healthy and one leader.",
        [
            f"sudo mv {q(data_dir)} {q(before)} && sudo mv {q(restored)} {q(data_dir)}",
            f"sudo mv {STOPPED}/etcd.yaml {MANIFESTS}/",
            f"{etcdctl} endpoint health --cluster",
            f"{etcdctl} endpoint status --cluster -w table",
        ],
    )


def _start_apiservers() -> Step:
    manifests = " ".join(f"{STOPPED}/{c}.yaml" for c in CONTROL_PLANE)
    return Step(
        START_APISERVERS,
        "On every control-plane node. Restart the kubelet on every node too, so that no "
        "component keeps a view of the cluster from before the restore. With systemd: "
        "`sudo systemctl start kube-apiserver kube-controller-manager kube-scheduler`.",
        [f"sudo mv {manifests} {MANIFESTS}/", "sudo systemctl restart kubelet"],
    )


def _check(snapshot) -> Step:
    taken = (
        f"at {snapshot.created_at:%Y-%m-%d %H:%M} UTC"
        if snapshot.created_at
        else "when the snapshot was taken"
    )
    return Step(
        CHECK,
        f"The API server must answer ready. The cluster is now as it was {taken}: objects "
        "created later are gone and objects deleted later are back; controllers reconcile "
        "the rest.",
        [
            "kubectl get --raw='/readyz?verbose'",
            "kubectl get nodes",
            "kubectl get namespaces",
        ],
    )
