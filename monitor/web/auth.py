"""Access control for `monitor serve`: a bearer token or HTTP basic credentials from the configuration.

On loopback without credentials configured, every request is served.  When
credentials are configured they are required on every request (a feed reader
can pass the token as ``?token=...``).  Off loopback the server refuses to
start without them (:func:`require_credentials`).
"""

from __future__ import annotations

import base64
import hmac
import ipaddress

from starlette.types import ASGIApp, Receive, Scope, Send

from monitor.config import WebSettings
from monitor.errors import UsageError


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_credentials(web: WebSettings, host: str) -> None:
    if not is_loopback(host) and not (web.token or (web.username and web.password)):
        raise UsageError(
            f"refusing to serve on {host} without credentials: set web.token, or web.username and "
            "web.password, in the configuration (or serve on 127.0.0.1)"
        )


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


class Guard:
    """ASGI middleware: 401 unless the request carries the configured credentials; 405 for anything
    but GET and HEAD, whatever the route."""

    def __init__(self, app: ASGIApp, web: WebSettings) -> None:
        self.app, self.web = app, web

    def allowed(self, scope: Scope) -> bool:
        if not (self.web.token or self.web.username):
            return True
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        auth = headers.get("authorization", "")
        if self.web.token:
            if auth.startswith("Bearer ") and _same(auth[7:].strip(), self.web.token):
                return True
            from urllib.parse import parse_qs

            tokens = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [])
            if any(_same(t, self.web.token) for t in tokens):
                return True
        if self.web.username and self.web.password and auth.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(auth[6:].strip()).decode().partition(":")
            except ValueError:
                return False
            return _same(user, self.web.username) & _same(password, self.web.password)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _plain(send, 405, "read-only: only GET and HEAD", [(b"allow", b"GET, HEAD")])
            return
        if not self.allowed(scope):
            challenge = [(b"www-authenticate", b'Basic realm="registry-monitor"')] if self.web.username else []
            await _plain(send, 401, "credentials required", challenge)
            return
        await self.app(scope, receive, send)


async def _plain(send: Send, status: int, text: str, headers: list) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
