"""`monitor serve`: a read-only web page over the store (Starlette, Jinja2 with autoescape everywhere).

Pages: ``/`` (the portfolio: recent changes with the filters of ``monitor
changes``, grouped by trial, most severe first; the watch list),
``/trials/{key}`` (versions, the three key dates drawn across versions, a
comparison of any two versions).  Feeds: ``/feeds/changes.atom`` (the same
filters as query parameters) and ``/feeds/watch/{group}.atom``.  JSON:
``/api/changes``, ``/api/trials/{key}``, ``/api/trials/{key}/diff?from=&to=``,
the CLI's JSON.  Only GET and HEAD are routed: nothing here can write.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from monitor.config import Settings
from monitor.errors import MonitorError, NotFoundError, StoreError
from monitor.feed import change_dict, short, trial_dict
from monitor.materiality import Materiality
from monitor.messages import headline as message_headline
from monitor.model import Category
from monitor.pipeline import compare_versions
from monitor.portfolio import CATEGORIES, ChangeFilter, aware, by_trial, changes, events, folded, portfolio
from monitor.render import comparison_json, headline, history_json, nothing_to_compare_json
from monitor.store import Store
from monitor.web.auth import Guard
from monitor.web.chart import dates_chart

READ_ONLY = ["GET", "HEAD"]
DEFAULT_SINCE = "30d"
DEFAULT_LIMIT = 500
FEED_LIMIT = 200


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("monitor.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),  # registry text is escaped everywhere
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["short"] = short
    env.filters["day"] = lambda moment: f"{aware(moment):%Y-%m-%d}" if moment else ""
    env.filters["iso"] = lambda moment: aware(moment).isoformat(timespec="seconds") if moment else ""
    return env


def _filter(request: Request, defaults: bool) -> ChangeFilter:
    q = request.query_params
    limit = q.get("limit")
    try:
        limit_value = int(limit) if limit else (DEFAULT_LIMIT if defaults else None)
    except ValueError:
        raise MonitorError(f"limit {limit!r} is not a number") from None
    return ChangeFilter(
        since=q.get("since") if "since" in q else (DEFAULT_SINCE if defaults else None),
        until=q.get("until") or None,
        watches=tuple(v for v in q.getlist("watch") if v),
        trials=tuple(v for v in q.getlist("trial") if v),
        categories=tuple(v for v in q.getlist("category") if v),
        min_severity=q.get("min_severity") or None,
        include_backfill=q.get("include_backfill") in ("1", "true", "on", "yes"),
        limit=limit_value,
    )


def create_app(store: Store, settings: Settings, now: Callable[[], datetime]) -> Starlette:
    env = _environment()

    def page(name: str, status: int = 200, **context) -> HTMLResponse:
        return HTMLResponse(env.get_template(name).render(**context), status_code=status)

    async def home(request: Request) -> Response:
        wanted = _filter(request, defaults=True)
        found = changes(store, settings, wanted, now())
        rows = portfolio(store, settings)
        return page(
            "portfolio.html.j2",
            wanted=wanted,
            groups=by_trial(folded(found)),
            count=len(found),
            rows=[trial_dict(r) for r in rows],
            categories=[(c, Category(c).label) for c in CATEGORIES],
            watch_groups=[g.name for g in settings.watches],
            feed_query=request.url.remove_query_params("token").query,  # the web token is never shown
        )

    async def trial(request: Request) -> Response:

        key = request.path_params["key"]
        history = store.versions.history(key)
        q = request.query_params
        comparison = None
        if len(history) > 1 or q.get("from"):
            comparison = compare_versions(store, key, q.get("from") or None, q.get("to") or None)
        return page(
            "trial.html.j2",
            key=key,
            history=history,
            latest=history[-1].record,
            summaries={v.number: ("first version" if v.number == 1 else headline(v.changes)) for v in history},
            chart=dates_chart(history),
            comparison=comparison,
        )

    def atom(request: Request, wanted: ChangeFilter, title: str) -> Response:
        found = changes(store, settings, wanted, now())
        entries = []
        for items in events(folded(found)):
            key = items[0].trial_key
            first = items[0]
            entries.append(
                {
                    "id": f"urn:registry-monitor:{key}:{first.version or 'event'}:{first.id}",
                    "updated": max(i.detected_at for i in items),
                    "title": f"{key}: {_headline(items)}",
                    "link": str(request.url_for("trial", key=key)),
                    "html": _html(items),  # a str: the template escapes it once more, for XML
                    "trial_title": first.title,
                }
            )
        updated = max((e["updated"] for e in entries), default=now())
        self_url = str(request.url.remove_query_params("token"))  # the web token is never shown
        body = env.get_template("feed.atom.j2").render(
            title=title, self_url=self_url, home=str(request.url_for("home")), entries=entries, updated=updated
        )
        return Response(body, media_type="application/atom+xml; charset=utf-8")

    async def changes_feed(request: Request) -> Response:
        wanted = _filter(request, defaults=False)
        if wanted.limit is None:
            wanted = ChangeFilter(**{**wanted.__dict__, "limit": FEED_LIMIT})
        return atom(request, wanted, "registry-monitor: changes")

    async def group_feed(request: Request) -> Response:
        group = request.path_params["group"]
        wanted = ChangeFilter(watches=(group,), limit=FEED_LIMIT)
        return atom(request, wanted, f"registry-monitor: {group}")

    async def api_changes(request: Request) -> Response:
        found = changes(store, settings, _filter(request, defaults=False), now())
        return JSONResponse([change_dict(i) for i in found])

    async def api_trial(request: Request) -> Response:

        versions = store.versions.history(request.path_params["key"])
        return Response(history_json(versions, None, Materiality(settings.materiality)), media_type="application/json")

    async def api_diff(request: Request) -> Response:

        q = request.query_params
        key = request.path_params["key"]
        if not (q.get("from") or q.get("to")):  # as `monitor diff KEY`: one version is no error

            history = store.versions.history(key)
            if history and not any(v.changes for v in history[1:]):
                return Response(nothing_to_compare_json(key, history), media_type="application/json")
        comp = compare_versions(store, key, q.get("from") or None, q.get("to") or None)
        return Response(comparison_json(comp, None, Materiality(settings.materiality)), media_type="application/json")

    async def refused(request: Request, exc: MonitorError) -> Response:
        # an unknown trial, a damaged or unreachable database (the server's problem, not the request's), a bad parameter
        status = 404 if isinstance(exc, NotFoundError) else 500 if isinstance(exc, StoreError) else 400
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": exc.message}, status_code=status)
        return page("error.html.j2", status=status, message=exc.message)

    app = Starlette(
        routes=[
            Route("/", home, methods=READ_ONLY, name="home"),
            Route("/trials/{key}", trial, methods=READ_ONLY, name="trial"),
            Route("/feeds/changes.atom", changes_feed, methods=READ_ONLY, name="changes_feed"),
            Route("/feeds/watch/{group}.atom", group_feed, methods=READ_ONLY, name="group_feed"),
            Route("/api/changes", api_changes, methods=READ_ONLY),
            Route("/api/trials/{key}", api_trial, methods=READ_ONLY),
            Route("/api/trials/{key}/diff", api_diff, methods=READ_ONLY),
        ],
        exception_handlers={MonitorError: refused},
    )
    app.add_middleware(Guard, web=settings.web)
    return app


def _html(items) -> str:
    from html import escape

    lines = "".join(
        f"<li>{i.change.severity.value} [{i.change.category.label}] {escape(i.change.summary)}</li>" for i in items
    )
    return f"<ul>{lines}</ul>"


def _headline(items) -> str:
    return message_headline(sorted((i.change for i in items), key=lambda c: c.severity.value != "major"))


