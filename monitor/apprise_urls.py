"""Apprise URLs: whether Apprise can send to one, and the only form of one that is ever shown.

Apprise is imported when a URL is checked or shown, not at start-up: only a route needs it.
"""

from __future__ import annotations

from monitor.masking import mask_secrets, remember


def is_apprise_url(url: str) -> bool:
    """Whether Apprise knows how to send to ``url`` (its secrets are hidden from now on)."""
    import apprise  # start-up speed: Apprise loads its plugins only when a URL is checked

    remember(url)
    return apprise.Apprise().add(url)


def private_url(url: str) -> str:
    """The URL with its secrets hidden: Apprise's privacy form, then our own
    masking (Apprise shows header arguments such as ``?+X-Api-Key=`` in clear)."""
    import apprise  # start-up speed, as above

    remember(url)
    bundle = apprise.Apprise()
    if not bundle.add(url):
        return url.split("://")[0] + "://***"
    return mask_secrets(next(iter(bundle)).url(privacy=True))
