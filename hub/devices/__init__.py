"""Kiosks: pairing with a site, their connections, health and remote commands, and the visits
of students who use them without an account. Owns the tables devices, device_pairings,
pairing_code_failures, device_commands, device_events, kiosk_settings and kiosk_visits."""
