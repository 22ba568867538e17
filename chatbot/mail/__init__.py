"""E-mail continuity: agents' replies mailed to visitors who left, their answers back by mail, transcripts,
and hand-off notices for agents (docs/email.md)."""
