"""The kiosk's screens, in the order a student meets them: pairing (once per device), attract and
nickname, subject/photo/question, waiting, room, feedback and thank-you; overlays above them."""
