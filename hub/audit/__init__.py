"""The audit log: who read a room report or a chat transcript, who exported statistics, and
when a student downloaded or deleted their data; readable by admins at /admin/audit. Owns the
table audit_entries."""
