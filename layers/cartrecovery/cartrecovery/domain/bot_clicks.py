"""Whether a click on an email's link was made by a machine rather than by the shopper.

Mail security gateways (Microsoft Defender Safe Links, Mimecast, Proofpoint, Barracuda, Cisco) and other
automated agents (link previews, HTTP libraries, crawlers) follow the links of an email, mostly within
seconds of its delivery. Counted as clicks they inflate the report and, for a store with
``coupon.only_if_not_clicked``, would hold the coupon email back from a shopper who never clicked.

The rules are conservative: a click is a machine's only on positive evidence, so a click from any real
browser, phone or in-app browser counts as the shopper's. They read only what the SES Click event holds and
need no state: the user agent and the click's time against the send's. The IP address is not used (scanner
ranges change and would need a list kept up to date), nor is the link (a scanner follows the shop's links
like a shopper). The reasons are in docs/decisions.md.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

NO_USER_AGENT = "no_user_agent"
AUTOMATED_USER_AGENT = "automated_user_agent"
TOO_SOON = "too_soon"

# The least time from the send (SES's ``mail.timestamp``) to a click a person could make: SES takes a second
# or more to deliver, then the shopper has to notice the email, open it and tap a link. A gateway that scans
# before delivering clicks within this window, whatever user agent it shows (often an ordinary browser's);
# a cart email lands unannounced hours after the visit, so a shopper watching the inbox then is rare.
HUMAN_CLICK_MIN_DELAY = timedelta(seconds=10)

_AUTOMATED = re.compile(
    r"""
    (?<!cu)bot\b                        # Googlebot, bingbot, Slackbot, TelegramBot; not the phone maker CUBOT
    | (?:crawler|spider)\b              # crawlers: Baiduspider, "Sogou web spider"
    | \+https?://                       # a crawler's contact URL ("+http://www.google.com/bot.html")
    | headless                          # headless browsers driven by scripts: HeadlessChrome
    | \bphantomjs\b
    | \b(?:python-requests|python-urllib|python-httpx|aiohttp|curl|wget|go-http-client|java|okhttp
         |apache-httpclient|axios|node-fetch|undici|libwww-perl|scrapy|guzzlehttp|dalvik)/  # HTTP libraries
    | \bfacebookexternalhit\b | \bbingpreview\b | \bskypeuripreview\b   # link previews
    | \bms-?office\b | \bmicrosoft\ office\b  # Office's own fetch of a link, ahead of the browser it opens
    | \b(?:barracuda|proofpoint|mimecast|ironport|cisco)\b  # mail security gateways that name themselves
    """,
    re.IGNORECASE | re.VERBOSE,
)


def machine_click_reason(user_agent: str | None, clicked_at: datetime | None, sent_at: datetime | None) -> str | None:
    """Why a click was a machine's (``no_user_agent``, ``automated_user_agent``, ``too_soon``), or None for a
    click the shopper may have made. A time that is missing proves nothing."""
    if user_agent is None or not user_agent.strip():
        return NO_USER_AGENT  # every browser sends one; a script may not
    if is_automated_user_agent(user_agent):
        return AUTOMATED_USER_AGENT
    if clicked_at is not None and sent_at is not None and clicked_at - sent_at < HUMAN_CLICK_MIN_DELAY:
        return TOO_SOON  # a click timed before the send is no person's either
    return None


def is_automated_user_agent(user_agent: str) -> bool:
    """Whether a user agent names a crawler, an HTTP library, a link preview or a mail security gateway."""
    return _AUTOMATED.search(user_agent) is not None
