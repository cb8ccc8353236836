"""manage.py demo: the demo workspace, a local location, and the local clusters.

Idempotent: run it again and it brings the demo back to the same state
(re-registering the clusters with fresh kubeconfigs if devenv rebuilt them).
"""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from locations.models import BackupLocation
from locations.validation import validate_and_record
from palette_site import egress
from workspaces import etcd_identity
from workspaces.kube import check_health, flatten_kubeconfig
from workspaces.models import Cluster, Workspace
from workspaces.registration import register_cluster
from workspaces.roles import Role

DEMO_USER = "demo"
DEMO_WORKSPACE = "Demo"
CLUSTERS = {"cluster-a": "CLUSTER_A", "cluster-b": "CLUSTER_B"}


class Command(BaseCommand):
    help = "Create the demo user, workspace and local location, and register the local clusters."

    def add_arguments(self, parser):
        parser.add_argument("--no-seed", action="store_true", help="Do not seed the clusters")

    def handle(self, *args, **options):
        call_command("migrate", interactive=False, verbosity=0)
        password = os.environ.get("DEMO_PASSWORD", "demo")
        user = self._user(password)
        workspace = self._workspace(user)
        self._location(workspace)
        registered = self._clusters(workspace, user, seed=not options["no_seed"])
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS("The demo is ready."))
        self.stdout.write(f"  Open http://127.0.0.1:8000 and log in as {DEMO_USER} / {password}")
        self.stdout.write(
            f"  ({DEMO_USER} is Admin of the Demo workspace; for the Django admin, make a "
            "superuser with: .venv/bin/python manage.py createsuperuser)"
        )
        if not registered:
            self.stdout.write(
                self.style.WARNING(
                    "  No local clusters could be registered: `make devenv` could not build or "
                    "start them (it needs Go; see its output above).\n"
                    "  Register your own cluster instead, in the console (Workspaces > Demo > "
                    "Register a cluster) or with:\n"
                    "    .venv/bin/python manage.py register_cluster NAME --workspace demo "
                    "--kubeconfig ~/.kube/config"
                )
            )

    def _user(self, password: str):
        """An ordinary account: Admin of the demo workspace (see _workspace), allowed to
        create workspaces, but no superuser (``manage.py createsuperuser`` makes one)."""
        from django.contrib.auth.models import Permission

        user, _ = get_user_model().objects.get_or_create(username=DEMO_USER)
        user.is_staff = user.is_superuser = False
        user.set_password(password)
        user.save()
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label="workspaces", codename="add_workspace")
        )
        return user

    @transaction.atomic
    def _workspace(self, user) -> Workspace:
        workspace, _ = Workspace.objects.get_or_create(
            slug="demo",
            defaults={
                "name": DEMO_WORKSPACE,
                "description": "The two local clusters of `make devenv`.",
                "created_by": user,
            },
        )
        workspace.grant(Role.ADMIN, user=user)
        return workspace

    def _location(self, workspace: Workspace) -> BackupLocation:
        path = Path(settings.DATA_DIR) / "backups"
        path.mkdir(parents=True, exist_ok=True)
        location, _ = BackupLocation.objects.update_or_create(
            name="local",
            defaults={
                "workspace": workspace,
                "is_default": True,
                "provider": BackupLocation.Provider.FILESYSTEM,
                "credential_mode": BackupLocation.CredentialMode.NONE,
                "path": str(path),
                "prefix": "velero",
            },
        )
        result = validate_and_record(location)
        self.stdout.write(
            f"Location local ({path}): {'Available' if result.ok else result.message}"
        )
        return location

    def _clusters(self, workspace: Workspace, user, seed: bool) -> int:
        try:
            import devenv
        except ImportError:
            return 0
        env = devenv.load_env()
        if env:
            self._warn_about_the_local_network()
        registered = 0
        for name, key in CLUSTERS.items():
            path = env.get(f"{key}_KUBECONFIG")
            if not path or not Path(path).exists():
                continue
            kubeconfig = flatten_kubeconfig(Path(path).read_text(), Path(path).parent)
            health = check_health(kubeconfig)
            if not health.reachable:
                self.stdout.write(self.style.WARNING(f"{name} does not answer: {health.message}"))
                continue
            etcd = self._etcd(env, key)
            cluster = Cluster.objects.filter(name=name).first()
            try:
                cluster = self._register(cluster, workspace, name, kubeconfig, user, health, etcd)
            except ValidationError as exc:
                # e.g. cluster B's plaintext etcd without PALETTE_ETCD_ALLOW_PLAINTEXT
                self.stdout.write(
                    self.style.WARNING(f"{name}: etcd left out: {' '.join(exc.messages)}")
                )
                blank = dict.fromkeys(etcd, "")
                cluster = self._register(cluster, workspace, name, kubeconfig, user, health, blank)
            self.stdout.write(f"Cluster {name}: {health.message}")
            if seed:
                from devenv.seed import seed as seed_cluster

                # Cluster A also gets the demo app with known data in its volumes.
                seed_cluster(
                    path,
                    log=lambda line: self.stdout.write(f"  {line}"),
                    stateful=key == "CLUSTER_A",
                )
                cluster.check_health()
            registered += 1
        return registered

    @staticmethod
    def _register(cluster, workspace, name, kubeconfig, user, health, etcd) -> Cluster:
        """Register the cluster, or bring a registered one up to date, through the
        same checks (etcd endpoint rules, etcd identity) as any registration."""
        if cluster is None:
            return register_cluster(
                workspace=workspace,
                name=name,
                kubeconfig=kubeconfig,
                by=user,
                description="Local demo cluster from `make devenv`.",
                health=health,
                **etcd,
            )
        for field, value in {"kubeconfig": kubeconfig, **etcd}.items():
            setattr(cluster, field, value)
        cluster.full_clean()
        try:
            etcd_identity.record(cluster)
        except etcd_identity.EtcdIdentityError as exc:
            raise ValidationError(str(exc)) from None
        except etcd_identity.EtcdError:
            cluster.etcd_cluster_id, cluster.etcd_members = "", []
        cluster.save()
        cluster.record_health(health)
        return cluster

    def _warn_about_the_local_network(self) -> None:
        try:
            egress.check_host("127.0.0.1")
        except egress.EgressDenied:
            self.stdout.write(
                self.style.WARNING(
                    "The local clusters and stores are on 127.0.0.1, which the egress policy "
                    "refuses: run `make demo`, or set PALETTE_EGRESS_ALLOW=127.0.0.0/8,::1,"
                    "localhost (and PALETTE_ETCD_ALLOW_PLAINTEXT=1 for cluster-b's etcd)."
                )
            )

    @staticmethod
    def _etcd(env: dict, key: str) -> dict:
        endpoint = env.get(f"{key}_ETCD_ENDPOINT", "")
        values = {"etcd_endpoint": endpoint}
        for field, suffix in (("etcd_ca", "CA"), ("etcd_cert", "CERT"), ("etcd_key", "KEY")):
            file = env.get(f"{key}_ETCD_{suffix}")
            values[field] = Path(file).read_text() if file and Path(file).exists() else ""
        return values
