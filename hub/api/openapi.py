"""The OpenAPI 3.1 description of the hub's HTTP API for programs: the `/api/…` routes, the
operators' `/healthz`, `/readyz` and `/metrics`, and the downloads a person's program may fetch
(a student's data, the statistics export, a helper's calendar feed). The pages people read in a
browser are not in it. tests/test_openapi.py fails when an `/api/` route or a JSON answer is
missing here, and runs schemathesis against a real hub with it: keep both true together."""

from __future__ import annotations

from typing import Any

VERSION = "1"

JSON = "application/json"


def _object(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON object with these fields (further fields may come: clients ignore them)."""
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
    }


def _ok(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    return _object({"ok": {"const": True}, **required}, optional)


STRING = {"type": "string"}
TEXT = {"type": "string", "minLength": 1}
INTEGER = {"type": "integer"}
BOOLEAN = {"type": "boolean"}
ROLE = {
    "type": "string",
    "enum": ["student", "helper", "coordinator", "site_staff", "admin", "kiosk"],
}

ERROR = _object(
    {
        "ok": {"const": False},
        "error": _object(
            {
                # "invalid", "unauthenticated", "forbidden", "not_found", "too_large",
                # "rate_limited", "unavailable", "storage_full", and the pairing codes of RFC
                # 8628 (authorization_pending, slow_down, expired_token, access_denied)
                "code": TEXT,
                "message": TEXT,  # in the caller's language, Danish unless it asked otherwise
            },
            {"details": {"type": "object"}},
        ),
    }
)

ERROR_TEXTS = {
    400: "Malformed or invalid input (error.details.fields names the fields)",
    401: "Not logged in, or the token is not (or no longer) valid",
    403: "The caller's role may not do this",
    404: "Not found",
    405: "Not a method of this address",
    413: "Too large",
    429: "Too many tries: wait error.details.retry_after_s seconds",
    503: "The database is not available right now; try again (Retry-After)",
    507: "The hub's disk is full",
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {JSON: {"schema": schema}}


def _errors(*statuses: int) -> dict[str, Any]:
    """JSON error answers `{"ok": false, "error": {...}}`, and the 503 of a database that is down,
    which any route that reads the database can answer."""
    return {
        str(code): {"description": ERROR_TEXTS[code], "content": _json(ERROR)}
        for code in {*statuses, 503}
    }


def _page_errors(*statuses: int) -> dict[str, Any]:
    """What a route outside /api/ answers on refusal: an error page for a person."""
    answers: dict[str, Any] = {
        str(code): {"description": ERROR_TEXTS[code], "content": {"text/html": {"schema": STRING}}}
        for code in {*statuses, 503}
    }
    return answers


LOGIN_REDIRECT = {
    "302": {
        "description": "Not logged in: to the login page",
        "headers": {"Location": {"schema": STRING, "required": True}},
    }
}

BEARER_OR_COOKIE: list[dict[str, list[str]]] = [{"bearer": []}, {"session": []}]


def _body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": _json(schema)}


def _paths() -> dict[str, Any]:
    return {
        "/api/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This description",
                "responses": {
                    "200": {
                        "description": "The OpenAPI document",
                        "content": _json({"type": "object"}),
                    }
                },
            }
        },
        "/api/auth/token": {
            "post": {
                "operationId": "token",
                "summary": "A bearer token for a user of the hub (tools, tests, the socket's auth)",
                "requestBody": _body(
                    _object(
                        {
                            "username": {"type": "string", "minLength": 1, "maxLength": 40},
                            "password": {"type": "string", "minLength": 1, "maxLength": 200},
                        }
                    )
                ),
                "responses": {
                    "200": {
                        "description": "The token, for `Authorization: Bearer` or the socket",
                        "content": _json(_ok({"token": TEXT, "role": ROLE, "user_id": INTEGER})),
                    },
                    **_errors(400, 401, 429),
                },
            },
            "delete": {
                "operationId": "revoke_token",
                "summary": "Revoke the bearer token the call carries; refused from then on",
                "security": [{"bearer": []}],
                "responses": {
                    "200": {"description": "Revoked", "content": _json(_ok({}))},
                    **_errors(401),
                },
            },
        },
        "/api/me": {
            "get": {
                "operationId": "me",
                "summary": "Who the caller is",
                "security": [*BEARER_OR_COOKIE, {}],
                "responses": {
                    "200": {
                        "description": "The caller",
                        "content": _json(
                            _ok({"user_id": INTEGER, "role": ROLE, "display_name": STRING})
                        ),
                    },
                    **_errors(401),
                },
            }
        },
        "/api/catalog": {
            "get": {
                "operationId": "catalog",
                "summary": "Subjects, grades and languages to ask about, in the caller's language",
                "security": [],
                "responses": {
                    "200": {
                        "description": "The catalogue",
                        "content": _json(
                            _ok(
                                {
                                    "subjects": {
                                        "type": "array",
                                        "items": _object(
                                            {"id": INTEGER, "key": TEXT, "name": TEXT}
                                        ),
                                    },
                                    "grades": {"type": "array", "items": INTEGER},
                                    "languages": {
                                        "type": "array",
                                        "items": _object({"code": TEXT, "name": TEXT}),
                                    },
                                }
                            )
                        ),
                    },
                    **_errors(),
                },
            }
        },
        "/api/schedule/status": {
            "get": {
                "operationId": "scheduleStatus",
                "summary": "Whether the café is open now, and if not when it opens",
                "security": [],
                "responses": {
                    "200": {
                        "description": "Open or closed",
                        "content": _json(
                            _ok(
                                {
                                    "open": BOOLEAN,
                                    "opens_at": {
                                        "type": ["string", "null"],
                                        "format": "date-time",
                                    },
                                    "message": STRING,
                                }
                            )
                        ),
                    },
                    **_errors(),
                },
            }
        },
        "/api/attachments": {
            "post": {
                "operationId": "uploadAttachment",
                "summary": "A student attaches the assignment: a photo (made a JPEG) or a PDF",
                "security": BEARER_OR_COOKIE,
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": _object({"file": {"type": "string", "format": "binary"}})
                        }
                    },
                },
                "responses": {
                    "201": {
                        "description": "Stored; name `attachment_id` in help:request",
                        "content": _json(
                            _ok(
                                {
                                    "attachment_id": TEXT,
                                    "mime": {"enum": ["image/jpeg", "application/pdf"]},
                                    "size": {"type": "integer", "minimum": 1},
                                }
                            )
                        ),
                    },
                    **_errors(400, 401, 403, 413, 507),
                },
            }
        },
        "/api/attachments/{attachment_id}": {
            "get": {
                "operationId": "attachment",
                "summary": "An attachment, for its student, the helper it was offered to, an admin",
                "security": BEARER_OR_COOKIE,
                "parameters": [
                    {"name": "attachment_id", "in": "path", "required": True, "schema": STRING}
                ],
                "responses": {
                    "200": {
                        "description": "The file",
                        "content": {
                            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                            "application/pdf": {"schema": {"type": "string", "format": "binary"}},
                        },
                    },
                    **_errors(401, 403, 404),
                },
            }
        },
        "/api/devices/pair": {
            "post": {
                "operationId": "pair",
                "summary": "A kiosk asks to be paired (RFC 8628's device authorisation request)",
                "security": [],
                "requestBody": _body(
                    {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string", "maxLength": 60},
                            "model": {"type": "string", "maxLength": 80},
                            "site_code": {"type": "string", "maxLength": 32},
                        },
                    },
                    required=False,
                ),
                "responses": {
                    "200": {
                        "description": "The codes: show user_code, poll with device_code",
                        "content": _json(
                            _ok(
                                {
                                    "device_code": TEXT,
                                    "user_code": TEXT,
                                    "verification_uri": TEXT,
                                    "verification_uri_complete": TEXT,
                                    "expires_in": INTEGER,
                                    "interval": INTEGER,
                                }
                            )
                        ),
                    },
                    **_errors(400, 429),
                },
            }
        },
        "/api/devices/pair/poll": {
            "post": {
                "operationId": "pairPoll",
                "summary": "The kiosk asks whether site staff confirmed its code",
                "security": [],
                "requestBody": _body(
                    _object({"device_code": {"type": "string", "minLength": 1, "maxLength": 100}})
                ),
                "responses": {
                    "200": {
                        "description": "Paired: the device token",
                        "content": _json(
                            _ok(
                                {
                                    "device_token": TEXT,
                                    "device_id": INTEGER,
                                    "site": _object({"id": INTEGER, "name": TEXT}),
                                }
                            )
                        ),
                    },
                    **_errors(400),
                },
            }
        },
        "/api/devices/unpair": {
            "post": {
                "operationId": "unpair",
                "summary": "A kiosk unpairs itself, with its device token as the bearer token",
                "security": [{"device": []}],
                "responses": {
                    "200": {"description": "Unpaired", "content": _json(_ok({}))},
                    **_errors(401),
                },
            }
        },
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "Liveness: the process answers",
                "security": [],
                "responses": {"200": {"description": "Alive", "content": _json(_ok({}))}},
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "Readiness: the database (and Redis, when processes share one) answer",
                "security": [],
                "responses": {
                    code: {"description": text, "content": _json(_readiness())}
                    for code, text in (("200", "Ready"), ("503", "Not ready: `down` says what"))
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics, for loopback, the allow-list or the metrics token",
                "security": [],
                "responses": {
                    "200": {
                        "description": "Prometheus text format",
                        "content": {"text/plain": {"schema": STRING}},
                    },
                    **_page_errors(403),
                },
            }
        },
        "/me/data.json": {
            "get": {
                "operationId": "myData",
                "summary": "A student downloads their own data",
                "security": BEARER_OR_COOKIE,
                "responses": {
                    "200": {
                        "description": "Everything the hub keeps about the student",
                        "content": _json(
                            _object(
                                {
                                    "downloaded_at": TEXT,
                                    "account": {"type": "object"},
                                    "help_requests": {"type": "array"},
                                    "sessions": {"type": "array"},
                                }
                            )
                        ),
                    },
                    **LOGIN_REDIRECT,
                    **_page_errors(403),
                },
            }
        },
        "/admin/stats/export.csv": {
            "get": {
                "operationId": "statsExport",
                "summary": "The statistics as CSV (admins; site staff for their own site)",
                "security": BEARER_OR_COOKIE,
                "parameters": [
                    {"name": "from", "in": "query", "schema": {"type": "string", "format": "date"}},
                    {"name": "to", "in": "query", "schema": {"type": "string", "format": "date"}},
                    {"name": "by", "in": "query", "schema": {"enum": ["day", "week"]}},
                    {"name": "site", "in": "query", "schema": INTEGER},
                ],
                "responses": {
                    "200": {
                        "description": "One row per figure: table, key, label, value",
                        "content": {"text/csv": {"schema": STRING}},
                    },
                    **LOGIN_REDIRECT,
                    **_page_errors(400, 403, 404),
                },
            }
        },
        "/shifts/feed/{token}.ics": {
            "get": {
                "operationId": "shiftFeed",
                "summary": "A helper's shifts for a calendar app; the secret address is the key",
                "security": [],
                "parameters": [{"name": "token", "in": "path", "required": True, "schema": STRING}],
                "responses": {
                    "200": {
                        "description": "iCalendar",
                        "content": {"text/calendar": {"schema": STRING}},
                    },
                    **_page_errors(404),
                },
            }
        },
    }


def _readiness() -> dict[str, Any]:
    state = {"enum": ["ok", "down"]}
    return _object(
        {
            "ok": BOOLEAN,
            "checks": _object({"database": state}, {"redis": state}),
        },
        {"down": {"type": "array", "items": {"enum": ["database", "redis"]}}},
    )


def document() -> dict[str, Any]:
    """The OpenAPI document."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Lektiecafé Online hub",
            "version": VERSION,
            "description": (
                "The hub's HTTP API for programs. Realtime events go over Socket.IO "
                '(docs/protocol.md). Every JSON refusal is {"ok": false, "error": {"code", '
                '"message"}}, the message in the caller\'s language (Accept-Language; Danish '
                "by default)."
            ),
        },
        "servers": [{"url": "/"}],
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token from POST /api/auth/token",
                },
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "lektiecafe_session",
                    "description": "A browser's login",
                },
                "device": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A kiosk's device token from POST /api/devices/pair/poll",
                },
            },
            "schemas": {"Error": ERROR},
        },
        "paths": _paths(),
    }
