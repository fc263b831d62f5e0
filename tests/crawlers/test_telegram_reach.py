# ruff: noqa: E501  (the HTML block copies t.me markup line for line, as narrawatch/demo/tme_pages.py does)
"""Telegram reach on t.me/s pages: views and reactions (crawlers.telegram.parse_reactions).

The saved real blocks (tests/data/telegram, tchan's suite, 2023) show views but carry no reactions
row (the channel had reactions off); the reactions row below is written in the markup t.me renders
(``div.tgme_widget_message_reactions`` holding one ``span.tgme_reaction`` per reaction: an emoji in
``<i class="emoji"><b>``, a custom emoji as ``<tg-emoji emoji-id>``, paid Stars with the class
``tgme_reaction_paid``), counts in the compact form views use.
"""

from __future__ import annotations

import json
from pathlib import Path

from crawlers.telegram import parse_channel_page
from tests.support.tme import build_channel_page

CASES = Path(__file__).resolve().parents[1] / "data" / "telegram"

BLOCK = """
<div class="tgme_widget_message_wrap js-widget_message_wrap"><div class="tgme_widget_message js-widget_message" data-post="durov/400">
 <div class="tgme_widget_message_bubble">
  <div class="tgme_widget_message_text js-message_text" dir="auto">Hello <i class="emoji"><b>🔥</b></i> world</div>
  <div class="tgme_widget_message_reactions js-message_reactions">
   <span class="tgme_reaction tgme_reaction_paid"><i class="icon icon-telegram-stars"></i>16.8K</span>
   <span class="tgme_reaction"><i class="emoji" style="background-image:url('//telegram.org/img/emoji/40/F09F918D.png')"><b>👍</b></i>1.2K</span>
   <span class="tgme_reaction"><tg-emoji emoji-id="5190660975866437599"></tg-emoji>194K</span>
   <span class="tgme_reaction"><i class="emoji"><b>❤</b></i>1\u202f234</span>
   <span class="tgme_reaction"><i class="emoji"><b>🤡</b></i></span>
  </div>
  <div class="tgme_widget_message_footer compact js-message_footer"><div class="tgme_widget_message_info short js-message_info">
   <span class="tgme_widget_message_views">35.6K</span><span class="copyonly"> views</span>
   <span class="tgme_widget_message_meta"><a class="tgme_widget_message_date" href="https://t.me/durov/400"><time datetime="2025-01-01T12:00:00+00:00" class="time">12:00</time></a></span>
  </div></div>
 </div>
</div></div>
"""


def test_reactions_emoji_custom_and_paid_with_compact_counts() -> None:
    (post,) = parse_channel_page(BLOCK, "durov").posts
    assert post.views == 35_600
    assert post.reactions == (("paid", 16_800), ("👍", 1_200), ("custom:5190660975866437599", 194_000), ("❤", 1_234))
    assert post.text == "Hello 🔥 world"  # the reactions row is not text


def test_saved_real_pages_have_views_and_no_reactions() -> None:
    expected = {}
    for line in (CASES / "expected.jsonl").read_text(encoding="utf-8").splitlines():
        case = json.loads(line)
        if case["expected"].get("__type__") == "ChannelMessage" and case["expected"].get("type") != "service":
            expected[case["html_file"]] = case["expected"]["views"]
    assert len(expected) >= 15
    for html_file, views in expected.items():
        page = parse_channel_page((CASES / html_file).read_text(encoding="utf-8"), "tchantest")
        for post in page.posts:
            assert post.views == views and post.reactions == (), html_file


def test_builder_pages_round_trip_reactions() -> None:
    post = {"message_id": 7, "date": "2024-11-30T19:39:32+00:00", "text": "Текст", "views": 950}
    html = build_channel_page("svtvnews", [{**post, "reactions": {"👍": 42, "custom:77": 3, "paid": 2500}}], None)
    (parsed,) = parse_channel_page(html, "svtvnews").posts
    assert parsed.views == 950 and dict(parsed.reactions) == {"👍": 42, "custom:77": 3, "paid": 2500}
    (plain,) = parse_channel_page(build_channel_page("svtvnews", [post], None), "svtvnews").posts
    assert plain.reactions == ()
