"""Secrets never shown: the one masking function for every URL, error and log line.

Apprise URLs carry passwords and tokens in every part: the userinfo
(``json://user:PASSWORD@host``), the host and path (``slack://TOKEN_A/TOKEN_B/TOKEN_C``,
``https://hooks.slack.com/services/T.../B.../TOKEN``, Discord and Teams
webhooks) and the query (``?+X-Api-Key=TOKEN``, ``?-X-Token=...``, ``?token=``,
``?key=``, ``?apikey=``, ``?secret=``, ``?password=``).  :func:`mask_secrets`
hides each of these in any text, and also every secret it was told about
(:func:`remember`: the route URLs, literal or from ``${ENV}``), wherever it
appears, so that a token an Apprise plugin logs on its own is hidden too.

:class:`SecretFilter` runs every record of a logger through the same function;
the library installs it on Apprise's logger (:func:`guard`), the CLI on its
log handler.  Database URLs keep their host and database name; only their
password is hidden.
"""

from __future__ import annotations

import logging
import re
import threading

MASK = "***"
_URL = re.compile(r"\b(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*)://(?P<rest>[^\s'\"<>()\[\]{},]+)")
_SECRET_NAME = re.compile(r"token|key|secret|pass|pwd|auth|sig|credential|session|bearer|webhook", re.IGNORECASE)
_HEADER_PREFIX = re.compile(r"^(\+|-|%2b|%2d)", re.IGNORECASE)
_TOKENISH = re.compile(r"[A-Za-z0-9_~%-]{8,}")
_NCT = re.compile(r"NCT\d{8}")
_DATABASES = {"sqlite", "postgresql", "postgres", "mysql", "mariadb", "file"}
_known: set[str] = set()
_lock = threading.Lock()


def mask_secrets(text: str) -> str:
    """``text`` with the secrets of every URL in it, and every remembered secret, replaced by ``***``."""
    text = _URL.sub(lambda m: _mask_url(m.group("scheme"), m.group("rest")), text)
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for secret in known:
        text = text.replace(secret, MASK)
    return text


def remember(url: str) -> None:
    """Hide the secrets of ``url`` wherever they appear from now on."""
    found = _secrets_of(url)
    if "://" not in url:  # no scheme (a variable holding the token alone): the whole text may be the secret
        found.append(url.strip())
    with _lock:
        _known.update(s for s in found if len(s) >= 8)  # shorter: too likely an ordinary word


def _is_token(part: str) -> bool:
    """A host or path segment that looks like a credential rather than a name."""
    return (
        bool(_TOKENISH.fullmatch(part))
        and not _NCT.fullmatch(part)
        and any(c.isdigit() for c in part)
        and any(c.isalpha() for c in part)
    )


def _split(scheme: str, rest: str) -> tuple[str, str, str, str]:
    """(userinfo, host, path, query) of a URL's part after ``scheme://``."""
    main, _, query = rest.partition("?")
    netloc, slash, path = main.partition("/")
    userinfo, at, host = netloc.rpartition("@")
    return (userinfo if at else ""), host, slash + path, query


def _secret_query(name: str) -> bool:
    return bool(_HEADER_PREFIX.match(name) or _SECRET_NAME.search(name))


def _mask_url(scheme: str, rest: str) -> str:
    userinfo, host, path, query = _split(scheme, rest)
    database = scheme.lower().split("+")[0] in _DATABASES
    shown = f"{scheme}://"
    if userinfo:
        user, colon, _password = userinfo.partition(":")
        if colon:
            shown += f"{user}:{MASK}@"
        else:
            shown += f"{MASK if _is_token(user) and not database else user}@"
    host_name, colon, port = host.partition(":")
    shown += (MASK if _is_token(host_name) and not database else host_name) + colon + port
    if database:
        shown += path
    else:
        shown += "/".join(MASK if _is_token(p) else p for p in path.split("/"))
    if query:
        pairs = []
        for pair in query.split("&"):
            name, eq, value = pair.partition("=")
            pairs.append(f"{name}={MASK}" if eq and value and _secret_query(name) else pair)
        shown += "?" + "&".join(pairs)
    elif rest.endswith("?"):
        shown += "?"
    return shown


def _secrets_of(url: str) -> list[str]:
    match = _URL.search(url)
    if not match:
        return []
    scheme = match.group("scheme")
    userinfo, host, path, query = _split(scheme, match.group("rest"))
    found = []
    user, colon, password = userinfo.partition(":")
    if colon:
        found.append(password)
    elif user and _is_token(user):
        found.append(user)
    if scheme.lower().split("+")[0] not in _DATABASES:
        found += [p for p in [host.partition(":")[0], *path.split("/")] if _is_token(p)]
    for pair in query.split("&"):
        name, eq, value = pair.partition("=")
        if eq and value and _secret_query(name):
            found.append(value)
    from urllib.parse import unquote

    return found + [unquote(s) for s in found if unquote(s) != s]


class SecretFilter(logging.Filter):
    """Masks the secrets in every record it sees (message, arguments and traceback)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to logging's own error handling
            return True
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_secrets(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = mask_secrets(record.exc_text)
        return True


def guard(logger: logging.Logger | logging.Handler) -> None:
    """Install the :class:`SecretFilter` on a logger or handler (once)."""
    if not any(isinstance(f, SecretFilter) for f in logger.filters):
        logger.addFilter(SecretFilter())
