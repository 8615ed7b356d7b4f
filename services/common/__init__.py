"""Plumbing shared by every service: settings, store, NATS, outbox relay, tracked consumer."""
