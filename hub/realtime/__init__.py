"""The Socket.IO edge: authenticate connections, track presence, and run event handlers with one
shape of answer: {"ok": true, ...} or {"ok": false, "error": {"code", "message"}}. Owns the
tables hub_instances and connections."""
