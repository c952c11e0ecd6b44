"""The Lektiecafé hub: accounts, matching, rooms, break room and admin pages in one Flask app."""

from __future__ import annotations

import importlib
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import (
    Flask,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from flask.typing import ResponseReturnValue
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from hub import clock, security
from hub.config import HubConfig
from hub.db import Database
from hub.errors import DATABASE_DOWN, HubError, Unauthenticated, database_unavailable
from hub.extensions import babel, csrf, socketio
from hub.state import HubState

log = logging.getLogger(__name__)
LOCALES = ("da", "en")
HERE = Path(__file__).parent


def create_app(config: HubConfig) -> Flask:
    """The hub's Flask app on `config`'s database, with every feature's routes and socket events."""
    config = config.with_secret()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=config.secret_key,
        SESSION_COOKIE_SECURE=config.secure_cookies,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="lektiecafe_session",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        MAX_CONTENT_LENGTH=config.attachment_max_bytes + 256 * 1024,
        BABEL_DEFAULT_LOCALE="da",
        BABEL_TRANSLATION_DIRECTORIES=str(HERE / "translations"),
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=None,
    )
    app.session_interface = _OneSerializerSessions()
    state = HubState(config=config, db=Database(config.resolved_database_url))
    app.extensions["lektiecafe"] = state
    babel.init_app(app, locale_selector=select_locale)
    csrf.init_app(app)
    socketio.init_app(
        app,
        client_manager=state.bus.socketio_manager,  # one process, or several over Redis
        cors_allowed_origins=[],  # same origin only
        max_http_buffer_size=1_000_000,
    )
    app.config["SOCK_SERVER_OPTIONS"] = {"max_message_size": 1_000_000, "ping_interval": 25}

    from hub.accounts.routes import bp as accounts_bp
    from hub.admin.routes import bp as admin_bp
    from hub.api.routes import bp as api_bp
    from hub.attachments.routes import bp as attachments_bp
    from hub.audit.routes import bp as audit_bp
    from hub.catalog.routes import bp as catalog_bp
    from hub.devices.routes import bp as devices_bp
    from hub.helpdesk.routes import bp as helpdesk_bp
    from hub.matching.routes import helper_bp, student_bp
    from hub.rooms.docsocket import bp as room_doc_bp
    from hub.rooms.routes import bp as reports_bp
    from hub.schedule.routes import bp as schedule_bp
    from hub.shifts.routes import bp as shifts_bp
    from hub.stats.routes import bp as stats_bp

    for bp in (
        accounts_bp,
        admin_bp,
        api_bp,
        attachments_bp,
        audit_bp,
        catalog_bp,
        devices_bp,
        helpdesk_bp,
        helper_bp,
        student_bp,
        reports_bp,
        room_doc_bp,
        schedule_bp,
        shifts_bp,
        stats_bp,
    ):
        app.register_blueprint(bp)
    clock.init_app(app, config)  # the test clock's edges; they answer 404 unless test_clock

    from hub.accounts.mydata import data_right_used, student_deleting
    from hub.audit.service import record_data_right
    from hub.devices.service import identify as identify_kiosk
    from hub.helpdesk.service import open_report_ticket
    from hub.realtime import events as realtime_events
    from hub.rooms.service import report_filed
    from hub.stats.service import archive_student

    # Socket handlers, bound to this app's Socket.IO server like the blueprints above.
    realtime_events.register(socketio, identify_kiosk)
    for feature in socket_features():
        feature.events.register(socketio)
    # A deleted student's requests stay in the statistics, anonymous.
    student_deleting.connect(archive_student)
    # A student's download of their data and deletion of their account go into the audit log.
    data_right_used.connect(record_data_right)
    # A report from a room is also a helpdesk ticket.
    report_filed.connect(open_report_ticket)

    app.before_request(_protect_forms)
    app.after_request(security.add_headers)  # CSP, HSTS behind TLS, no framing
    app.register_error_handler(HubError, _hub_error)
    for down in DATABASE_DOWN:
        app.register_error_handler(down, _database_down)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    app.context_processor(lambda: {"locale": select_locale(), "locales": LOCALES})
    # Numbers in the reader's language: 0,25 in Danish, 0.25 in English.
    app.jinja_env.filters["decimal"] = lambda value: format_decimal(value, format="0.##")

    from hub import operations

    operations.init_app(app)  # /healthz, /readyz, /metrics and what the metrics count
    return app


class _OneSerializerSessions(SecureCookieSessionInterface):
    """Flask's cookie sessions with the signing serializer made once, not per request.

    Flask-SocketIO opens the cookie session for every socket event, and building the serializer
    (which test-encodes a value) was about a tenth of the hub's time under load."""

    def get_signing_serializer(self, app: Flask) -> Any:
        cached = app.extensions.get("lektiecafe.session_serializer")
        if cached is None:
            cached = super().get_signing_serializer(app)
            app.extensions["lektiecafe.session_serializer"] = cached
        return cached


SOCKET_FEATURES = ("breakroom", "devices", "helpdesk", "matching", "rooms")


def socket_features() -> list[Any]:
    """The `events` modules of the features with socket events: the factory registers them, the
    refusal tests walk every event they declare."""
    return [importlib.import_module(f"hub.{name}.events") for name in SOCKET_FEATURES]


def select_locale() -> str:
    """Danish, the café's language, unless someone chose: the language switch (kept in the
    session), or a program (the kiosk, an API client: a call to /api/ or a socket that carries no
    session cookie) that asks in Accept-Language. A browser's Accept-Language says how its machine
    was set up, not what the pupil reads (a Danish pupil on an English school machine sends
    "en-US,en"), so a browser gets another language only if it asks for one the hub has other
    than English, every machine's default, and Danish is not among its choices."""
    if not _has_request():
        return "da"
    chosen = session.get("lang")
    if chosen in LOCALES:
        return str(chosen)
    asked = request.accept_languages
    program = request.path.startswith(("/api/", "/socket.io/")) and (
        "lektiecafe_session" not in request.cookies
    )
    if program:
        return asked.best_match(LOCALES) or "da"
    others = [code for code in LOCALES if code not in ("da", "en")]
    if others and asked.best_match(("da",)) is None:
        return asked.best_match(others) or "da"
    return "da"


def _has_request() -> bool:
    from flask import has_request_context

    return has_request_context()


# Takes JSON only (which a cross-site form cannot send) and sets no cookie.
CSRF_EXEMPT = {"accounts.api_token", "devices.pair", "devices.poll", "test_clock.advance_clock"}


def _protect_forms() -> None:
    """CSRF for everything a browser sends with its cookie; bearer-token calls carry no cookie,
    and a call to /api/ outside a login (a program's, no or a dead session cookie) has no login
    to forge: it gets the route's own answer, e.g. 401, not a form error."""
    if (
        request.method in ("POST", "PUT", "PATCH", "DELETE")
        and request.endpoint not in CSRF_EXEMPT
        and not request.headers.get("Authorization", "").startswith("Bearer ")
        and not (request.path.startswith("/api/") and "identity" not in session)
    ):
        csrf.protect()


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def _error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> ResponseReturnValue:
    if _wants_json():
        error = {"code": code, "message": message, **({"details": details} if details else {})}
        return {"ok": False, "error": error}, status
    return render_template("error.html", status=status, message=message), status


def _hub_error(exc: HubError) -> ResponseReturnValue:
    if isinstance(exc, Unauthenticated) and not _wants_json():
        return redirect(url_for("accounts.login", next=request.full_path.rstrip("?")))
    return _error_response(exc.status, exc.code, exc.message, exc.details)


def _database_down(exc: Exception) -> ResponseReturnValue:
    """The database is down or restarting: 503 with a plain message, not a 500 and a traceback;
    the next request tries it afresh (the pool pings before it hands out a connection)."""
    log.warning("database unavailable: %s", type(exc.__cause__ or exc).__name__)
    response = make_response(_hub_error(database_unavailable()))
    response.headers["Retry-After"] = "5"
    return response


def _csrf_error(exc: CSRFError) -> ResponseReturnValue:
    return _error_response(
        400, "csrf", _("The form had expired. Please go back, reload the page and try again.")
    )


def _http_error(exc: HTTPException) -> ResponseReturnValue:
    status = exc.code or 500
    messages = {
        400: _("The request was not understood."),
        401: _("Please log in first."),
        403: _("You do not have access to this page."),
        404: _("This page does not exist."),
        405: _("This address does not accept that kind of request."),
        413: _("The file is too large."),
        429: _("Too many requests. Wait a moment and try again."),
    }
    codes = {
        400: "invalid",
        401: "unauthenticated",
        403: "forbidden",
        404: "not_found",
        413: "too_large",
        429: "rate_limited",
    }
    return _error_response(
        status, codes.get(status, "error"), messages.get(status, _("Something went wrong."))
    )
