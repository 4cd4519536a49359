"""Routing: pure routing decisions, the outbound peer client, and durable delivery."""
