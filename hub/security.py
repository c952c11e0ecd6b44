"""The security headers on every answer of the hub: a strict Content-Security-Policy (scripts and
styles from the hub's own files only, no inline script, no framing), and HSTS when the page came
over TLS, directly or through a trusted proxy that says so in X-Forwarded-Proto."""

from __future__ import annotations

import ipaddress

from flask import Response, request

from hub.state import hub_state

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self' ws: wss:",
        "object-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "form-action 'self'",
    ]
)
# Two years: once a browser has seen it, it never asks this name over plain HTTP again. Not
# includeSubDomains: other hosts of the school or library may still need plain HTTP (the same as
# deploy/nginx/lektiecafe.conf sends for what nginx answers itself).
STRICT_TRANSPORT_SECURITY = "max-age=63072000"


def over_tls() -> bool:
    """Whether the browser reached the hub over HTTPS: directly, or through a proxy the hub trusts
    (`trusted_proxies`) that says so; what any other caller claims is not believed."""
    if request.is_secure:
        return True
    forwarded = request.headers.get("X-Forwarded-Proto", "")
    if forwarded.split(",")[-1].strip().lower() != "https":
        return False
    try:
        peer = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    proxies = hub_state().config.trusted_proxies
    return any(peer in ipaddress.ip_network(net, strict=False) for net in proxies)


def add_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")  # frame-ancestors for older browsers
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "camera=(self), microphone=(self), geolocation=()")
    if over_tls():
        headers.setdefault("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY)
    return response
