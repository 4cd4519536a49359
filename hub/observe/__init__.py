"""Observing the hub: /health and /status, /metrics, logging, the traffic log."""
