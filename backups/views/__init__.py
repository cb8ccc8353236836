"""Pages of the backups app: lists, backups, restores, etcd snapshots."""
