"""Turning detector events into alerts: rules, dedup, rendering, a persistent outbox, channels."""
