"""Real receivers on 127.0.0.1 for notification tests: an SMTP server (aiosmtpd)
and an HTTP endpoint for Apprise's json:// posts."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mailbox:
    """A real SMTP server on 127.0.0.1 that keeps every message it is given."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.messages: list[email.message.EmailMessage] = []
        self.controller = None

    def start(self) -> Mailbox:
        from aiosmtpd.controller import Controller

        mailbox = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                mailbox.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller:
            self.controller.stop()
            self.controller = None

    def url(self, to: str = "team@example.org") -> str:
        return f"mailto://127.0.0.1:{self.port}?from=monitor@example.org&to={to}&mode=insecure"

    def texts(self) -> list[str]:
        """Each message's text: its plain part, else its HTML part."""
        return [m.get_body(preferencelist=("plain", "html")).get_content() for m in self.messages]

    def html(self) -> list[str]:
        return [m.get_body(preferencelist=("html",)).get_content() for m in self.messages]


class Webhook:
    """A real HTTP receiver for Apprise's json:// posts, and for its Slack
    plugin's posts once :func:`slack_to` points the plugin here (each post's
    path is kept in ``paths``)."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        self.paths: list[str] = []
        self.content_types: list[str | None] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                receiver.posts.append(json.loads(self.rfile.read(length)))
                receiver.paths.append(self.path)
                receiver.content_types.append(self.headers.get("Content-Type"))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")  # what Slack answers

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.httpd.server_address[1]}/hook"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def slack_to(base: str) -> None:
    """Point Apprise's Slack plugin (its webhook mode) at ``base``/services instead
    of hooks.slack.com: the real plugin, its real payload, a local receiver."""
    from apprise.plugins.slack import NotifySlack

    NotifySlack.webhook_url = f"{base}/services"
