"""Everything on a kiosk device that is not pixels: local state, pairing, hub connection, media.

Built in the kiosk issue; see docs/architecture.md. Must never import Flask or pygame."""
