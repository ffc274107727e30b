"""Plumbing and contracts every Mentorbus service needs once: settings, database,
events, outbox/inbox, Kafka, identity, errors. No business rules live here."""
