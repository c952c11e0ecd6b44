"""The break room chat of waiting students. Owns the table breakroom_messages."""
