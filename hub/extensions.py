"""The Flask extensions, created once and bound to the app in `create_app`."""

from __future__ import annotations

from flask_babel import Babel
from flask_sock import Sock
from flask_socketio import SocketIO
from flask_wtf.csrf import CSRFProtect

socketio = SocketIO()
sock = Sock()  # plain WebSocket routes (the document sync)
babel = Babel()
csrf = CSRFProtect()
