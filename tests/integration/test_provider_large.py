"""A 200 MiB object goes up and down through every provider with flat memory.

The transfer runs in a child process (``python -m tests.integration.test_provider_large``)
so that nothing else in the test run shares its heap: the child warms up with a small
object (imports, connection pools), notes its RSS, streams the object up from a
generator and down into a hash, and reports for each direction its peak RSS (the
kernel's high-water mark, reset through ``/proc/self/clear_refs``) above that base. Data is never held whole: 1 MiB writes of a reused random block.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time

import pytest

pytestmark = pytest.mark.integration

SIZE = 200 * 1024 * 1024
CHUNK = 1024 * 1024
MAX_GROWTH = 64 * 1024 * 1024
KINDS = ["filesystem", "minio", "s3-on-minio", "s3-moto", "gcs", "azure-key"]
FIELDS = (
    "provider",
    "bucket",
    "prefix",
    "path",
    "region",
    "endpoint_url",
    "force_path_style",
    "credential_mode",
    "role_arn",
    "external_id",
    "credentials",
)


@pytest.mark.parametrize("kind", KINDS)
def test_200_mib_up_and_down_with_flat_memory(kind, request, tmp_path):
    # Imported here: the child process runs this module before Django is set up.
    from tests.integration.provider_support import STORES, location

    if STORES[kind] is None:
        env, bucket = {}, str(tmp_path)
    else:
        env = request.getfixturevalue("devenv")
        bucket = request.getfixturevalue(STORES[kind])
    loc = location(kind, env, bucket, prefix="large")
    config = {field: getattr(loc, field) for field in FIELDS}
    answer = subprocess.run(
        [sys.executable, "-m", "tests.integration.test_provider_large"],
        input=json.dumps(config),  # credentials go through stdin, not the command line
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **_policy_env(), "DJANGO_SETTINGS_MODULE": "palette_site.settings"},
    )
    assert answer.returncode == 0, answer.stderr[-3000:]
    report = json.loads(answer.stdout.strip().splitlines()[-1])
    sys.stderr.write(
        f"\n{kind}: up {report['up_seconds']:.1f}s (+{report['up_growth'] >> 20} MiB RSS), "
        f"down {report['down_seconds']:.1f}s (+{report['down_growth'] >> 20} MiB RSS)\n"
    )
    assert report["size"] == SIZE
    assert report["sent"] == report["received"]
    assert report["up_growth"] < MAX_GROWTH
    assert report["down_growth"] < MAX_GROWTH


# The child ---------------------------------------------------------------------------


def _status(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise LookupError(field)


class PeakRSS:
    """Peak RSS over a block: the kernel's high-water mark when it can be reset, else
    a 5 ms sampler."""

    def __enter__(self):
        self.base = _status("VmRSS")
        try:
            with open("/proc/self/clear_refs", "w") as refs:
                refs.write("5")
            self.sampler = None
        except OSError:
            self.peak, self.running = self.base, True
            self.sampler = threading.Thread(target=self._sample, daemon=True)
            self.sampler.start()
        self.started = time.monotonic()
        return self

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, _status("VmRSS"))
            time.sleep(0.005)

    def __exit__(self, *exc) -> None:
        self.seconds = time.monotonic() - self.started
        if self.sampler is None:
            self.peak = _status("VmHWM")
        else:
            self.running = False
            self.sampler.join()


def _chunks(size: int):
    block = os.urandom(CHUNK)
    for number in range(size // CHUNK):
        yield number.to_bytes(8, "little") + block[8:]


def _policy_env() -> dict[str, str]:
    # Imported here: this module is also the measuring subprocess, which sets Django up
    # itself before anything imports the models.
    from tests.conftest import policy_env

    return policy_env()


def main() -> None:
    import django

    django.setup()
    from locations.models import BackupLocation
    from locations.providers import get_provider

    provider = get_provider(BackupLocation(name="large", **json.load(sys.stdin)))
    key = "large/backups/big/big.tar.gz"
    # Warm up with a small object (imports, service models, connection pools), not
    # with a large one: the part buffers must show in the growth measured below.
    provider.put_bytes(key, b"warm")
    provider.get_bytes(key)

    base = _status("VmRSS")
    sent, received = hashlib.sha256(), hashlib.sha256()
    with PeakRSS() as up, provider.open_write(key) as writer:
        for chunk in _chunks(SIZE):
            sent.update(chunk)
            writer.write(chunk)
    size = sum(info.size for info in provider.list(key))
    with PeakRSS() as down, provider.open_read(key) as reader:
        while chunk := reader.read(CHUNK):
            received.update(chunk)
    provider.delete(key)
    provider.close()
    report = {
        "size": size,
        "sent": sent.hexdigest(),
        "received": received.hexdigest(),
        "up_seconds": up.seconds,
        "up_growth": up.peak - base,
        "down_seconds": down.seconds,
        # From the same base: memory the upload freed but kept counts against the download.
        "down_growth": down.peak - base,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
