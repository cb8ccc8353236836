"""manage.py register_cluster NAME --workspace W --kubeconfig FILE [--etcd-endpoint URL ...]"""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from palette_site.command_support import read_text
from workspaces.kube import KubeconfigError, check_health, flatten_kubeconfig, parse_kubeconfig
from workspaces.models import Cluster, Workspace
from workspaces.registration import register_cluster


class Command(BaseCommand):
    help = (
        "Register a Kubernetes cluster in a workspace. The console connects first and "
        "refuses a cluster it cannot reach (unless --allow-unreachable)."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="Cluster name: lower-case letters, digits, dashes")
        parser.add_argument("--workspace", required=True, help="Workspace name or slug")
        parser.add_argument("--kubeconfig", required=True, help="Path to a kubeconfig file")
        parser.add_argument("--description", default="")
        parser.add_argument("--etcd-endpoint", default="", help="e.g. https://127.0.0.1:2379")
        parser.add_argument("--etcd-ca", help="PEM file of etcd's CA")
        parser.add_argument("--etcd-cert", help="PEM file of an etcd client certificate")
        parser.add_argument("--etcd-key", help="PEM file of that certificate's key")
        parser.add_argument(
            "--allow-unreachable",
            action="store_true",
            help="Register even when the cluster does not answer now",
        )

    def handle(self, *args, **options):
        name = options["name"]
        workspace = Workspace.objects.filter(
            Q(slug=options["workspace"]) | Q(name=options["workspace"])
        ).first()
        if workspace is None:
            raise CommandError(
                f"There is no workspace {options['workspace']!r}. Create it in the console first."
            )
        if Cluster.objects.filter(name=name).exists():
            raise CommandError(f"A cluster named {name!r} is already registered.")
        path = Path(options["kubeconfig"])
        text = read_text(str(path), "kubeconfig")
        try:
            # Files the kubeconfig names are inlined, as kubectl config view --flatten does.
            kubeconfig = flatten_kubeconfig(text, path.resolve().parent)
            parse_kubeconfig(kubeconfig)
        except (KubeconfigError, OSError) as exc:
            raise CommandError(f"The kubeconfig cannot be used: {exc}") from None
        if options["etcd_cert"] and not options["etcd_key"]:
            raise CommandError("--etcd-cert needs --etcd-key.")
        if (options["etcd_ca"] or options["etcd_cert"]) and not options["etcd_endpoint"]:
            raise CommandError("etcd certificates need --etcd-endpoint.")

        health = check_health(kubeconfig)
        if not health.reachable and not options["allow_unreachable"]:
            raise CommandError(
                f"Cluster {name} is not reachable, so it was not registered: {health.message}\n"
                "Fix the kubeconfig or the network, or pass --allow-unreachable."
            )
        try:
            cluster = register_cluster(
                workspace=workspace,
                name=name,
                kubeconfig=kubeconfig,
                description=options["description"],
                etcd_endpoint=options["etcd_endpoint"],
                etcd_ca=read_text(options["etcd_ca"], "etcd CA"),
                etcd_cert=read_text(options["etcd_cert"], "etcd certificate"),
                etcd_key=read_text(options["etcd_key"], "etcd key"),
                health=health,
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        except KubeconfigError as exc:
            raise CommandError(f"The kubeconfig cannot be used: {exc}") from None
        state = "healthy" if health.reachable else "unreachable"
        self.stdout.write(
            f"Registered cluster {cluster.name} in workspace {workspace.name}: {state} "
            f"({health.message})."
        )
        if cluster.has_etcd:
            self.stdout.write("etcd snapshots are on: hourly, keeping 12 copies.")
