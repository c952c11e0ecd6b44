"""Files a student attaches to a request. Owns the table attachments."""
