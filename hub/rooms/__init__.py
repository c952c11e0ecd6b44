"""Rooms where a matched student and helper meet: signalling, chat, the shared document, reports
and feedback. Owns the tables rooms, room_messages, doc_updates, doc_snapshots, reports and
feedback."""
