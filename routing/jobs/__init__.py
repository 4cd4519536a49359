"""Background jobs: periodic tasks, pulls of pull-only CPOs, retention, the cluster heartbeat."""
