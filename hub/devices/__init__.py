"""Kiosks: pairing with a site, their connections, health and remote commands, and the visits
of students who use them without an account."""
