"""The pages that say how a backup and a restore stand with Velero, in Chromium at 1400 and
420 px: an imported Velero backup's provenance (list and page), what Velero can restore of
each volume, the preview's notes on node ports and claims left without their volume, and
the wizard's help. They fit at 420 px and keep the Content-Security-Policy.

With PALETTE_SCREENSHOTS_DIR set, a PNG of each page at each width is written there."""

from __future__ import annotations

import pytest
from django.urls import reverse

from backups.engine.restore.unlike_velero import claim_note, node_port_note
from backups.models import RestoreItem, Status, VolumeResult
from backups.sync import backup_from_document
from tests import factories
from tests.browser.test_every_page import csp_violations, overflow, screenshots_folder
from tests.factories import PASSWORD
from tests.unit.test_backup_provenance import VOLUMES, velero_document

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def pages(world) -> dict[str, tuple[str, list[str]]]:
    """name -> (url, texts the page must show)."""
    imported = backup_from_document(world.location, velero_document())
    imported.save()
    disks = factories.backup(world.cluster, world.location, include_disks=True)
    for i, (method, state, _text) in enumerate(VOLUMES):
        VolumeResult.objects.create(backup=disks, namespace="shop", claim=f"data-{i}",
                                    method=method, state=state, storage_class="csi-hostpath",
                                    capacity="64Mi")  # fmt: skip
    preview = factories.restore(disks, world.cluster, is_preview=True, status=Status.COMPLETED)
    ports = node_port_note(["30080/http", "30443/https"])
    claim = claim_note({"spec": {"volumeName": "pvc-3f1c"}})
    RestoreItem.objects.create(restore=preview, resource="services", namespace="shop",
                               name="web", outcome="created", message=ports)  # fmt: skip
    RestoreItem.objects.create(restore=preview, resource="persistentvolumeclaims",
                               namespace="shop", name="data-0", outcome="created",
                               message=claim)  # fmt: skip
    return {
        "backup-list": (reverse("backup_list"), ["Velero, location default, schedule daily"]),
        "imported-backup": (
            imported.get_absolute_url(),
            ["Came from", "Written by Velero to its storage location default"],
        ),
        "volume-backup": (
            disks.get_absolute_url(),
            [
                "Velero can restore",
                "Yes: the CSI snapshot, as its own",
                "It cannot read the console's copies",
            ],
        ),  # fmt: skip
        "restore-preview": (
            preview.get_absolute_url(),
            ["30080/http, 30443/https are not kept", "PersistentVolume pvc-3f1c is not restored"],
        ),
        "restore-wizard": (
            reverse("restore_wizard", args=[disks.pk]),
            ["unlike Velero", "Velero keeps node ports that were set explicitly"],
        ),
    }


def test_the_velero_pages_read_well_and_fit(world, page, log_in):
    folder = screenshots_folder()
    violations = csp_violations(page)
    wanted = pages(world)
    log_in("operator", PASSWORD)
    too_wide = {}
    for width in (1400, 420):
        page.set_viewport_size({"width": width, "height": 900})
        for name, (url, texts) in wanted.items():
            assert page.goto(url).status == 200, name
            shown = " ".join(page.inner_text("main").split()).lower()  # headings are upper-cased
            for text in texts:
                assert text.lower() in shown, (name, text)
            if width == 420 and (extra := overflow(page)):
                too_wide[name] = extra
            if folder:
                page.screenshot(path=str(folder / f"velero-{name}-{width}.png"), full_page=True)
    assert too_wide == {}, f"pages wider than 420 px (by px): {too_wide}"
    assert violations == []
