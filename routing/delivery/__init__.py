"""Delivery: the durable outbox, the scheduler and one attempt at a time (docs/DESIGN-NOTES.md, Delivery)."""
