"""Matching students who ask with helpers on duty: requests, offers, duty and the matching loop.
Owns the tables help_requests, offers and helper_duty; opens a room (hub.rooms) when an offer is
accepted, and frees the helper when rooms says the room ended."""
