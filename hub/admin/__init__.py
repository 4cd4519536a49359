"""Admin API: platforms, invitations, dead letters, agreements, operator accounts, OpenAPI."""
