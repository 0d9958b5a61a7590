"""Cross-cutting foundation: workspaces, memberships and roles, API tokens, artifacts, audit log."""
