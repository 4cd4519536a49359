"""Routing: one routed request (service, decide, forward), and its subsystems in subpackages."""
