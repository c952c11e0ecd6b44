"""Lektiecafé Online: the `lektiecafe` command. Parts are imported only by the subcommand that
needs them, so a kiosk install never pulls the hub's dependencies and vice versa."""

__version__ = "0.1.0"
