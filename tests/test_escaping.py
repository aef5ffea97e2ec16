"""Registry text escaped for every channel: a title or criterion carrying a
Slack mass mention or a disguised link reaches Apprise's real Slack plugin
(pointed at a local receiver) as harmless text; HTML templates escape even
when a user template forgets to."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from monitor.config import load_settings
from monitor.messages import event_message, markdown_text
from monitor.notify import Notifier
from monitor.pipeline import load
from monitor.store import Store

from conftest import UNKNOWN, study
from receivers import Webhook, slack_to

HOSTILE_TITLE = (
    "Lupus <!here> trial: <http://evil.example/phish|win a prize> [claim](http://evil.example) @channel & co"
)
HOSTILE_CRITERION = "Must tell <!channel> and <@U024BE7LH> ``` closed"


@pytest.fixture
def slack():
    hook = Webhook()
    slack_to(hook.base)
    yield hook
    hook.stop()


def hostile_versions(tmp_path):
    """NCT06302556 twice, its title and a new criterion written by an attacker."""
    paths = []
    for day in ("2026-02-02", "2026-03-02"):
        record = study(UNKNOWN / f"{day}.json")
        protocol = record["protocolSection"]
        protocol["identificationModule"]["briefTitle"] = HOSTILE_TITLE
        protocol["identificationModule"]["officialTitle"] = HOSTILE_TITLE
        if day == "2026-03-02":
            eligibility = protocol["eligibilityModule"]
            eligibility["eligibilityCriteria"] = eligibility["eligibilityCriteria"].replace(
                "* Lung transplant patients", f"* Lung transplant patients\n* {HOSTILE_CRITERION}"
            )
        path = tmp_path / f"NCT06302556-{day}.json"
        path.write_text(json.dumps(record))
        paths.append(path)
    return paths


def test_a_mass_mention_and_a_disguised_link_in_registry_text_reach_slack_escaped(tmp_path, slack):
    config = tmp_path / "monitor.yaml"
    config.write_text(f"""
database: sqlite:///{tmp_path / "monitor.db"}
notifications:
  routes:
    - name: slack
      urls: ["slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#lupus"]
""")
    settings = load_settings(str(config))
    store = Store.open(settings.database)
    clock = lambda: datetime(2026, 3, 10, 7, 0, tzinfo=UTC)  # noqa: E731
    first, second = hostile_versions(tmp_path)
    load(store, [first], clock, lambda key, changes: ["slack"])
    load(store, [second], clock, lambda key, changes: ["slack"])
    assert Notifier(store, settings, now=clock).send_due().sent == 1
    (post,) = slack.posts
    attachment = post["attachments"][0]
    text, title = attachment["text"], attachment["title"]
    assert post["mrkdwn"] is True, "sent as Slack mrkdwn, where <...> is live"
    for live in ("<!here>", "<!channel>", "<http://evil.example", "<@U024BE7LH>", "|win a prize>", "|claim>"):
        assert live not in text and live not in title, live
    assert "&lt;!here&gt;" in text and "&lt;!channel&gt;" in text, "shown as text"
    assert "&lt;http://evil.example/phish|win a prize&gt;" in text
    assert "[claim](http://evil.example)" in text, "plain text in Slack: the address is shown, not hidden"
    assert "@channel" not in text and "@\u200bchannel" in text
    assert " &amp; co" in text
    assert "<https://clinicaltrials.gov/study/NCT06302556|Registry record>" in text, "our own links stay links"


@pytest.mark.parametrize(
    ("registry_text", "shown"),
    [
        ("<!here>", "\\<!here\\>"),
        ("<http://evil.example/phish|win a prize>", "\\<http://evil.example/phish|win a prize\\>"),
        ("[win](http://evil.example)", "\\[win\\](http://evil.example)"),
        ("ping @channel, @HERE and @everyone", "ping @\u200bchannel, @\u200bHERE and @\u200beveryone"),
        ("a\\b", "a\\\\b"),
        ("status RECRUITING -> COMPLETED", "status RECRUITING -\\> COMPLETED"),
        ("AT&T e-mail: someone@example.org", "AT&T e-mail: someone@example.org"),
    ],
)
def test_markdown_text_neutralises_mentions_and_links(registry_text, shown):
    assert markdown_text(registry_text) == shown


def test_a_user_html_template_that_forgets_to_escape_is_still_safe(tmp_path):
    from monitor.model import Category, Change, ChangeKind, Severity

    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "event.html.j2").write_text(
        "<h1>{{ title }}</h1>{% for s in sections %}{{ s['items'][0].summary }}{% endfor %}"
    )
    change = Change(Category.STATUS, "overall_status", ChangeKind.MODIFIED, "A", "B", Severity.MAJOR, "<b>x</b> -> B")
    message = event_message("NCT00000001", "<script>alert(1)</script>", [change], "html", templates=str(templates))
    assert message.body.strip() == "<h1>&lt;script&gt;alert(1)&lt;/script&gt;</h1>&lt;b&gt;x&lt;/b&gt; -&gt; B"


def test_a_user_markdown_template_that_forgets_to_escape_is_still_safe(tmp_path):
    from monitor.model import Category, Change, ChangeKind, Severity

    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "event.md.j2").write_text("**{{ title }}** [record]({{ record_url }})")
    change = Change(Category.STATUS, "overall_status", ChangeKind.MODIFIED, "A", "B", Severity.MAJOR, "s")
    message = event_message("NCT00000001", "<!here> @here", [change], "markdown", templates=str(templates))
    assert message.body.strip() == "**\\<!here\\> @\u200bhere** [record](https://clinicaltrials.gov/study/NCT00000001)"


MARKUP = "*bold* _it_ `code` ~gone~ [a](http://evil) <!channel> <script>alert(1)</script> # not a heading"


@pytest.mark.parametrize(
    ("registry_text", "shown"),
    [
        ("*bold* and **strong**", "\\*bold\\* and \\*\\*strong\\*\\*"),
        ("_x_ and __y__", "\\_x\\_ and \\_\\_y\\_\\_"),
        ("NOT_YET_RECRUITING, snake_case_name", "NOT_YET_RECRUITING, snake_case_name"),
        ("`code` and ```fence```", "\\`code\\` and \\`\\`\\`fence\\`\\`\\`"),
        ("~struck~ and ~~gone~~", "\\~struck\\~ and \\~\\~gone\\~\\~"),
        ("# Heading\n## Second\nIssue #5", "\\# Heading\n\\## Second\nIssue #5"),
        ("[a](http://evil)", "\\[a\\](http://evil)"),
        ("<script>alert(1)</script>", "\\<script\\>alert(1)\\</script\\>"),
    ],
    ids=["asterisks", "underscores", "underscores_inside_words", "backticks", "tildes", "headings", "link", "tag"],
)
def test_markdown_text_escapes_every_inline_control_character(registry_text, shown):
    assert markdown_text(registry_text) == shown


def _hostile_change():
    from monitor.model import Category, Change, ChangeKind, Severity

    return Change(Category.STATUS, "why_stopped", ChangeKind.MODIFIED, "A", MARKUP, Severity.MAJOR, f"Why: {MARKUP}")


def test_registry_markup_in_an_html_message_is_shown_as_text():
    body = event_message("NCT00000001", MARKUP, [_hostile_change()], "html").body
    assert "<script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<!channel>" not in body and 'href="http://evil"' not in body


def test_registry_markup_in_a_markdown_message_is_escaped():
    body = event_message("NCT00000001", MARKUP, [_hostile_change()], "markdown").body
    escaped = markdown_text(MARKUP)
    assert body.count(escaped) == 2, body  # the title and the change's summary
    for live in ("*bold*", "_it_", "`code`", "~gone~", "[a]", "<!channel>", "<script>"):
        assert live not in body, live


def test_registry_markup_reaches_slack_as_text(slack):
    from monitor.notify import AppriseChannel
    from monitor.settings import Route, Settings

    message = event_message("NCT00000001", MARKUP, [_hostile_change()], "markdown")
    route = Route(name="slack", urls=("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#lupus",))
    assert AppriseChannel(Settings()).send(route, message).ok
    (post,) = slack.posts
    text = post["attachments"][0]["text"]
    for live in ("*bold*", "_it_", "`code`", "~gone~", "<!channel>", "<script>", "<http://evil"):
        assert live not in text, (live, text)
    assert "bold" in text and "&lt;script&gt;" in text


def test_registry_emphasis_code_and_strike_never_format_in_slack(slack):
    """Slack's mrkdwn has no backslash escapes: the registry's *, _, ~ and backtick reach it as
    look-alikes (no backslash shown, nothing bold, no code opened); the template's own markup stays."""
    from monitor.notify import AppriseChannel
    from monitor.settings import Route, Settings

    title = "*bold* _it_ ~gone~ `code` and a lone ` backtick, NOT_YET_RECRUITING"
    message = event_message("NCT00000001", title, [_hostile_change()], "markdown")
    route = Route(name="slack", urls=("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#lupus",))
    assert AppriseChannel(Settings()).send(route, message).ok
    (post,) = slack.posts
    text = post["attachments"][0]["text"]
    assert "\u2217bold\u2217 \u02cdit\u02cd \u223cgone\u223c \u02cbcode\u02cb and a lone \u02cb backtick" in text
    assert "NOT_YET_RECRUITING" in text, "an underscore inside a word was never escaped, and stays"
    assert "`" not in text and "\\*" not in text and "\\_" not in text and "\\~" not in text
    assert text.startswith("*NCT00000001 1 status change*"), "the template's own bold stays"
    assert "<https://clinicaltrials.gov/study/NCT00000001|Registry record>" in text


def test_registry_emphasis_never_formats_in_slack_reached_through_an_apprise_config_tag(tmp_path, slack):
    """A route of tags (no URL of its own: Markdown) reaching Slack through the Apprise config file gets
    the same look-alikes as a route naming the Slack URL."""
    from monitor.notify import AppriseChannel
    from monitor.settings import NotificationSettings, Route, Settings

    apprise_config = tmp_path / "apprise.txt"
    apprise_config.write_text("team=slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#lupus\n")
    settings = Settings(notifications=NotificationSettings(apprise_config=str(apprise_config)))
    message = event_message("NCT00000001", "*bold* _it_ ~gone~ `code`", [_hostile_change()], "markdown")
    assert AppriseChannel(settings).send(Route(name="by-tag", tags=("team",)), message).ok
    (post,) = slack.posts
    text = post["attachments"][0]["text"]
    assert "\u2217bold\u2217 \u02cdit\u02cd \u223cgone\u223c \u02cbcode\u02cb" in text, text
    assert "`" not in text and "\\*" not in text and "\\_" not in text and "\\~" not in text
