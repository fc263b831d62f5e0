# ruff: noqa: E501  (HTML templates copy real t.me markup line for line)
"""Build real-looking Telegram channel preview pages (``https://t.me/s/<channel>``): demo replay and tests.

The markup copies the structure of real t.me pages (see tests/data/telegram/cases/, saved from
t.me by PythonicCafe/tchan): the channel header, a "load more" link carrying ``data-before``, and
one ``tgme_widget_message_wrap`` block per post with text (``<br/>`` for newlines, URLs linked as
Telegram does), views, signature, forward header and date.

Posts are dicts like the lines of ../shared/data/telegram_ru_posts.jsonl::

    {"channel": "Naked Science", "message_id": 11851, "date": "2024-11-30T19:39:32+00:00", "text": "..."}

``channel`` there is the display name (used as the channel title); the username comes from the
``channel`` argument. Optional keys: ``views`` (int), ``author`` (signature), ``forwarded_from``
and ``forwarded_from_url``, ``photo`` (true: add a single photo attachment), ``reactions``
(``{"👍": 1200, "custom:5190660975866437599": 7, "paid": 3}``: the reactions row as t.me renders
emoji, custom-emoji and paid Stars reactions, counts in its compact form).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

__all__ = ["build_channel_page", "format_views", "urls_in"]

_URL = re.compile(r"https?://[^\s<>\"'«»]+[^\s<>\"'«».,;:!?)\]]")

_PAGE = """<!DOCTYPE html>
<html>
  <head>
    <meta charset="utf-8">
    <title>{title} – Telegram</title>
    <meta name="viewport" content="width=device-width, initial-scale=1.0, minimum-scale=1.0, maximum-scale=1.0, user-scalable=no">
    <meta property="og:title" content="{title}">
    <meta property="og:image" content="https://cdn4.telegram-cdn.org/file/{username}.jpg">
    <meta property="og:site_name" content="Telegram">
    <meta property="og:description" content="{description}">
    <meta name="twitter:card" content="summary">
    <link rel="canonical" href="https://t.me/s/{username}"/>
{prev_link}    <link href="//telegram.org/css/widget-frame.css?71" rel="stylesheet">
    <link href="//telegram.org/css/telegram-web.css?41" rel="stylesheet">
  </head>
  <body class="widget_frame_base tgme_widget body_widget_post emoji_image nodesktop">
    <header class="tgme_header search_collapsed">
      <div class="tgme_header_search">
        <form class="tgme_header_search_form" action="" method="get">
          <input class="tgme_header_search_form_input js-header_search" name="q" placeholder="Search" autocomplete="off" value="">
        </form>
      </div>
    </header>
    <main class="tgme_main">
      <div class="tgme_container">
        <section class="tgme_right_column">
          <div class="tgme_channel_info">
            <div class="tgme_channel_info_header">
              <i class="tgme_page_photo_image bgcolor1" data-content="{initial}"><img src="https://cdn4.telegram-cdn.org/file/{username}.jpg"></i>
              <div class="tgme_channel_info_header_title"><span dir="auto">{title}</span></div>
              <div class="tgme_channel_info_header_username"><a href="https://t.me/{username}">@{username}</a></div>
            </div>
            <div class="tgme_channel_info_counters"><div class="tgme_channel_info_counter"><span class="counter_value">{count}</span> <span class="counter_type">subscribers</span></div></div>
            <div class="tgme_channel_info_description">{description}</div>
          </div>
        </section>
        <section class="tgme_channel_history js-message_history">
{more}{messages}
        </section>
      </div>
    </main>
  </body>
</html>
"""

_MORE = (
    '          <div class="tgme_widget_message_centered js-messages_more_wrap">'
    '<a href="/s/{username}?before={before}" data-before="{before}" class="tme_messages_more js-messages_more"></a>'
    "</div>\n"
)

_MESSAGE = """
          <div class="tgme_widget_message_wrap js-widget_message_wrap">
            <div class="tgme_widget_message text_not_supported_wrap js-widget_message" data-post="{username}/{message_id}" data-view="{data_view}">
              <div class="tgme_widget_message_user"><a href="https://t.me/{username}"><i class="tgme_widget_message_user_photo bgcolor1" data-content="{initial}"><img src="https://cdn4.telegram-cdn.org/file/{username}.jpg"></i></a></div>
              <div class="tgme_widget_message_bubble">
                <i class="tgme_widget_message_bubble_tail"><svg class="bubble_icon" width="9px" height="20px" viewBox="0 0 9 20"></svg></i>
                <div class="tgme_widget_message_author accent_color"><a class="tgme_widget_message_owner_name" href="https://t.me/{username}"><span dir="auto">{title}</span></a></div>
{forward}{photo}{text}{reactions}                <div class="tgme_widget_message_footer compact js-message_footer">
                  <div class="tgme_widget_message_info short js-message_info">
                    {views}<span class="tgme_widget_message_meta">{author}<a class="tgme_widget_message_date" href="https://t.me/{username}/{message_id}"><time datetime="{iso}" class="time">{hhmm}</time></a></span>
                  </div>
                </div>
              </div>
            </div>
          </div>"""


def build_channel_page(channel: str, posts: list[dict[str, Any]], before: int | None) -> str:
    """A t.me/s/<channel> page holding ``posts`` (in the given order) and a "load more" link.

    ``before`` is written into the "load more" link (``?before=<id>``, also ``link rel=prev``);
    None leaves the link out, as on a channel's oldest page.
    """
    title = str(posts[0].get("channel") or channel) if posts else channel
    messages = "".join(_message(channel, title, post) for post in posts)
    return _PAGE.format(
        title=escape(title),
        username=escape(channel),
        initial=escape(title[:1]),
        description=escape(f"Канал {title}"),
        count="12.3K",
        prev_link=f'    <link rel="prev" href="/s/{escape(channel)}?before={before}">\n' if before is not None else "",
        more=_MORE.format(username=escape(channel), before=before) if before is not None else "",
        messages=messages,
    )


def format_views(views: int) -> str:
    """Views as t.me shows them: 950, 1.2K, 436.6K, 3.1M (one decimal, trailing .0 dropped)."""
    for scale, suffix in ((1_000_000, "M"), (1_000, "K")):
        if views >= scale:
            text = f"{views // (scale // 10) / 10:.1f}".removesuffix(".0")
            return text + suffix
    return str(views)


def _message(username: str, title: str, post: Mapping[str, Any]) -> str:
    message_id = int(post["message_id"])
    when = datetime.fromisoformat(str(post["date"]).replace("Z", "+00:00")).astimezone(UTC)
    view_token = {"c": -1000000000000 - len(username), "p": message_id, "t": int(when.timestamp()), "h": "0" * 18}
    data_view = base64.urlsafe_b64encode(json.dumps(view_token, separators=(",", ":")).encode()).decode().rstrip("=")
    views = post.get("views")
    return _MESSAGE.format(
        username=escape(username),
        message_id=message_id,
        data_view=data_view,
        initial=escape(title[:1]),
        title=escape(title),
        forward=_forward(post),
        photo=_photo(message_id, username) if post.get("photo") else "",
        text=_text_block(str(post.get("text") or "")),
        reactions=_reactions(post.get("reactions")),
        views=(
            f'<span class="tgme_widget_message_views">{format_views(int(views))}</span>'
            '<span class="copyonly"> views</span>'
            if views is not None
            else ""
        ),
        author=(
            f'<span class="tgme_widget_message_from_author" dir="auto">{escape(str(post["author"]))}</span>,&nbsp;'
            if post.get("author")
            else ""
        ),
        iso=when.isoformat(),
        hhmm=when.strftime("%H:%M"),
    )


def _forward(post: Mapping[str, Any]) -> str:
    name = post.get("forwarded_from")
    if not name:
        return ""
    url = post.get("forwarded_from_url")
    inner = f'<span dir="auto">{escape(str(name))}</span>'
    target = (
        f'<a class="tgme_widget_message_forwarded_from_name" href="{escape(str(url))}">{inner}</a>'
        if url
        else f'<span class="tgme_widget_message_forwarded_from_name">{inner}</span>'
    )
    return f'                <div class="tgme_widget_message_forwarded_from accent_color">Forwarded from&nbsp;{target}</div>\n'


def _reactions(reactions: Any) -> str:
    if not reactions:
        return ""
    spans = []
    for key, count in dict(reactions).items():
        shown = format_views(int(count))
        if key == "paid":
            spans.append(
                f'<span class="tgme_reaction tgme_reaction_paid"><i class="icon icon-telegram-stars"></i>{shown}</span>'
            )
        elif str(key).startswith("custom:"):
            spans.append(
                f'<span class="tgme_reaction"><tg-emoji emoji-id="{escape(str(key)[7:])}"></tg-emoji>{shown}</span>'
            )
        else:
            spans.append(
                '<span class="tgme_reaction"><i class="emoji" style="background-image:url(\'//telegram.org/img/emoji/40/'
                f"{escape(str(key).encode().hex().upper())}.png')\"><b>{escape(str(key))}</b></i>{shown}</span>"
            )
    return f'                <div class="tgme_widget_message_reactions js-message_reactions">{"".join(spans)}</div>\n'


def _photo(message_id: int, username: str) -> str:
    return (
        f'                <a class="tgme_widget_message_photo_wrap blured" href="https://t.me/{escape(username)}/{message_id}" '
        f"style=\"width:800px;background-image:url('https://cdn4.telegram-cdn.org/file/{message_id}.jpg')\">"
        '<div class="tgme_widget_message_photo" style="padding-top:56.25%"></div></a>\n'
    )


def _text_block(text: str) -> str:
    if not text:
        return ""
    return (
        f'                <div class="tgme_widget_message_text js-message_text" dir="auto">{_text_html(text)}</div>\n'
    )


def _text_html(text: str) -> str:
    """Escape, link bare URLs like Telegram does, and turn newlines into ``<br/>``."""
    out: list[str] = []
    last = 0
    for match in _URL.finditer(text):
        out.append(escape(text[last : match.start()], quote=False))
        url = match.group(0)
        out.append(
            f'<a href="{escape(url)}" target="_blank" rel="noopener" onclick="return confirm(\'Open this link?\\n\\n\'+this.href);">'
            f"{escape(url, quote=False)}</a>"
        )
        last = match.end()
    out.append(escape(text[last:], quote=False))
    return "".join(out).replace("\r\n", "\n").replace("\n", "<br/>")


def urls_in(text: str) -> Sequence[str]:
    """The URLs :func:`build_channel_page` links in ``text`` (for tests' expectations)."""
    return [m.group(0) for m in _URL.finditer(text)]
