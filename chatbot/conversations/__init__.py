"""Conversations: visitors, messages and who holds each conversation; the writes (services, journal,
ownership, delivery), the reads (selectors, access) and the protocol's JSON shapes (payloads)."""
