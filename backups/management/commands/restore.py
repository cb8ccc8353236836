"""manage.py restore BACKUP --to CLUSTER [...] [--wait]: prints the restore's name, then its phase."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from backups import browse
from backups.engine.filters import validate_selector
from backups.engine.storage.base import StorageError
from backups.engine.words import counted
from backups.jobs import JobRefused, run_and_wait, start_restore
from backups.management.commands.backup import PHASES
from backups.models import Backup, ResourceModifierSet, RestoreItem
from backups.naming import parse_class_mapping, parse_mapping, split_list
from palette_site.command_support import named, parsed
from workspaces.access import can, operation_q
from workspaces.models import Cluster
from workspaces.roles import Action

FIRST_FAILURES = 5


class Command(BaseCommand):
    help = "Restore a backup into a cluster. Prints the restore's name (and with --wait its final phase)."

    def add_arguments(self, parser):
        parser.add_argument("backup", help="The backup's name")
        parser.add_argument("--to", required=True, dest="cluster", help="Target cluster")
        parser.add_argument("--location", help="The backup's location, when the name is ambiguous")
        parser.add_argument("--include-namespaces", default="", help="a,b (default: all)")
        parser.add_argument("--exclude-namespaces", default="", help="c,d")
        parser.add_argument("--namespace-mapping", default="", help="a=b,c=d")
        parser.add_argument(
            "--include-resources",
            default="",
            help="deployments,configmaps (default: all; naming a control-plane kind keeps it)",
        )
        parser.add_argument("--exclude-resources", default="", help="secrets,...")
        parser.add_argument("--selector", default="", help="Label selector, e.g. app=shop")
        parser.add_argument(
            "--resource-modifiers",
            metavar="SET",
            help="A resource modifier set of the target cluster's workspace",
        )
        parser.add_argument("--existing-policy", choices=["none", "update"], default="none")
        parser.add_argument(
            "--cluster-resources", choices=["auto", "always", "never"], default="auto"
        )
        parser.add_argument(
            "--restore-pvs",
            action="store_true",
            help="PersistentVolumes and their data too. Off by default, unlike Velero (which "
            "restores volumes unless --restore-volumes=false): a recreated volume can point "
            "another cluster at the source's disk. Without it claims keep their volume "
            "names and bind only to a volume the target already has; --preview says so "
            "per claim",
        )
        parser.add_argument(
            "--storage-class-mapping", default="", help="Backup class=target class, e.g. a=b,c=d"
        )
        parser.add_argument(
            "--preserve-node-ports",
            action="store_true",
            help="Keep Services' node ports (default: new ones, so that a copy cannot "
            "collide with ports in use; Velero keeps those set explicitly). --preview "
            "lists the ports each Service would lose",
        )
        parser.add_argument(
            "--item",
            action="append",
            default=[],
            metavar="TYPE|NAMESPACE|NAME",
            help="Restore only this item (repeat for more), as the backup's resource list "
            "names it: 'apps/v1/Deployment|shop|web', 'v1/Namespace||shop' when cluster-wide",
        )
        parser.add_argument("--items-file", help="A file of such items, one a line")
        parser.add_argument("--preview", action="store_true", help="Server-side dry run only")
        parser.add_argument(
            "--as-user",
            help="Check that this user may restore into the target (as the console would)",
        )
        parser.add_argument("--wait", action="store_true", help="Wait; exit 1 unless Completed")

    def handle(self, *args, **o):
        backups = Backup.objects.filter(name=o["backup"]).select_related("location")
        if o["location"]:
            backups = backups.filter(location__name=o["location"])
        found = list(backups[:5])
        if not found:
            raise CommandError(f"There is no backup named {o['backup']!r}.")
        if len(found) > 1:
            where = ", ".join(b.location.name for b in found)
            raise CommandError(
                f"Backup {o['backup']} exists in several locations ({where}); pass --location."
            )
        backup = found[0]
        target = named(Cluster, o["cluster"], "cluster")
        user = None
        if o["as_user"]:
            user = get_user_model().objects.filter(username=o["as_user"], is_active=True).first()
            if user is None:
                raise CommandError(f"There is no active user {o['as_user']!r}.")
            # As the console would: the backup must be one the user may see (else the
            # wizard is a 404), and the target one the user may restore into.
            if not Backup.objects.filter(operation_q(user), pk=backup.pk).exists():
                raise CommandError(f"{user.username} may not see backup {backup.name}.")
            if not can(user, Action.RESTORE, target):
                raise CommandError(f"{user.username} may not restore into {target.name}.")
        mapping = parsed("--namespace-mapping", parse_mapping, o["namespace_mapping"])
        selector = parsed("--selector", validate_selector, o["selector"])
        modifier_set = self._modifier_set(o["resource_modifiers"], target, user)
        chosen = self._chosen(backup, o["item"], o["items_file"])
        classes = parsed("--storage-class-mapping", parse_class_mapping, o["storage_class_mapping"])
        try:
            restore = start_restore(
                backup,
                target,
                by=user,
                preview=o["preview"],
                include_namespaces=split_list(o["include_namespaces"]),
                exclude_namespaces=split_list(o["exclude_namespaces"]),
                include_resources=split_list(o["include_resources"]),
                exclude_resources=split_list(o["exclude_resources"]),
                label_selector=selector,
                modifier_set=modifier_set,
                resource_modifiers=modifier_set.rules if modifier_set else "",
                namespace_mapping=mapping,
                existing_policy=o["existing_policy"],
                cluster_resources=o["cluster_resources"],
                restore_pvs=o["restore_pvs"],
                storage_class_mapping=classes,
                preserve_node_ports=o["preserve_node_ports"],
                chosen_items=chosen,
            )
        except JobRefused as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(restore.name)
        if not o["wait"]:
            return
        restore = run_and_wait(restore)
        self.stdout.write(PHASES[restore.status])
        self.stdout.write(
            f"{restore.created_count} created, {restore.updated_count} updated, "
            f"{restore.skipped_count} skipped, {restore.failed_count} failed"
        )
        if restore.status in ("failed", "cancelled"):
            raise CommandError(restore.error or "The restore failed.")
        if restore.status != "completed":
            self._first_failures(restore)
            raise CommandError(f"{counted(restore.failed_count, 'item')} failed.")

    def _chosen(self, backup, items: list[str], path: str | None) -> list[list[str]]:
        """--item and --items-file, checked against the backup as the wizard checks them."""
        values = list(items)
        if path:
            try:
                with open(path, encoding="utf-8") as lines:
                    values += [line.strip() for line in lines if line.strip()]
            except (OSError, UnicodeError) as exc:
                raise CommandError(f"--items-file: {exc}") from None
        if not values:
            return []
        try:
            return browse.checked_items(backup, values)
        except ValueError as exc:
            raise CommandError(f"--item: {exc}") from None
        except StorageError as exc:
            raise CommandError(f"Reading the backup's resource list failed: {exc}") from None

    def _modifier_set(self, name, target, user):
        """The named set of the target's workspace (one the user may see, with --as-user)."""
        if not name:
            return None
        sets = ResourceModifierSet.objects.filter(workspace=target.workspace_id, name=name)
        if user is not None:
            sets = sets.restrict(user)
        found = sets.first()
        if found is None:
            raise CommandError(
                f"--resource-modifiers: workspace {target.workspace.name} has no resource "
                f"modifier set {name!r}."
            )
        return found

    def _first_failures(self, restore, shown: int = FIRST_FAILURES) -> None:
        failed = restore.items.filter(outcome=RestoreItem.Outcome.FAILED).order_by("id")
        for item in failed[:shown]:
            where = f"{item.namespace}/{item.name}" if item.namespace else item.name
            self.stdout.write(f"Failed: {item.resource} {where}: {item.message}")
        if restore.failed_count > shown:
            self.stdout.write(
                f"... and {restore.failed_count - shown} more; every failure is on the "
                f"restore's page."
            )
