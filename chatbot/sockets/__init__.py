"""The two websockets (widget, agent) on one base, the realtime fan-out of domain events to their groups,
rate limits, and how a socket behaves while PostgreSQL or Redis is away."""
