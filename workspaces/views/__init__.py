"""Pages of the workspaces app: the dashboard, workspaces and members, clusters."""
