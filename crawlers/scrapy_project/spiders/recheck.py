"""Re-check spiders: fetch stored items again and say whether each is present (maybe edited) or deleted.

Job state of a re-check run (per source): ``{"recheck": [{"document_id", "url", "extraction",
"message_id"?}, ...]}``. Nothing else is fetched: a page's re-check requests only the stored
item URL (redirects are followed under the same address guard as any crawl,
:mod:`crawlers.scrapy_project.middlewares`), a Telegram post's only the preview page that ends
at it (``<base>/s/<channel>?before=<id + 1>``). Politeness (robots.txt, per-host delay and
concurrency, retries with backoff) is the crawl's, from the same Scrapy settings.

Each item yields one ``recheck`` event (:mod:`crawlers.scrapy_project.events`)::

    {"event": "recheck", "source", "document_id", "url", "outcome", "status", "detail",
     "final_url", "document": {...} | null, "capture": {...} | null}

``outcome`` as :mod:`crawlers.recheck` decides it; ``document`` (present items whose text can be
compared) is the item as the source's crawl would build it now, with the capture of the response.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import scrapy
from scrapy.http import Response, TextResponse
from twisted.python.failure import Failure

from core.documents import Document
from core.errors import ExtractionError, ParseError
from core.serialize import document_to_dict
from crawlers.archive_scrapy import capture_response
from crawlers.extract import extract_article
from crawlers.normalize import make_document
from crawlers.recheck import Verdict, classify_page, classify_telegram
from crawlers.scrapy_project.spiders.base import SourceSpider
from crawlers.scrapy_project.spiders.telegram import TelegramSpider
from crawlers.scrapy_project.text import decode_body, failure_reason
from crawlers.telegram import parse_channel_page

__all__ = ["RecheckItemSpec", "RecheckPageSpider", "RecheckTelegramSpider", "recheck_spider_for"]


@dataclass(frozen=True)
class RecheckItemSpec:
    """One item of a re-check job."""

    document_id: str
    url: str
    extraction: str = ""
    message_id: int | None = None

    @classmethod
    def parse(cls, value: Any) -> RecheckItemSpec | None:
        """From job state; None for a malformed entry."""
        if not isinstance(value, dict) or not value.get("document_id") or not value.get("url"):
            return None
        mid = value.get("message_id")
        try:
            message_id = int(mid) if mid is not None else None
        except (TypeError, ValueError):
            return None
        return cls(str(value["document_id"]), str(value["url"]), str(value.get("extraction") or ""), message_id)


class _RecheckMixin:
    """The ``recheck`` event and the item list from job state (shared by both spiders)."""

    items: list[RecheckItemSpec]

    def _load_items(self, state: dict[str, Any]) -> list[RecheckItemSpec]:
        return [i for i in (RecheckItemSpec.parse(v) for v in state.get("recheck") or ()) if i is not None]

    def emit_recheck(
        self,
        item: RecheckItemSpec,
        verdict: Verdict,
        *,
        final_url: str = "",
        document: Document | None = None,
        response: Response | None = None,
    ) -> None:
        """One ``recheck`` event (the response's capture rides along when there is a response)."""
        spider: Any = self
        capture = None
        if response is not None:
            capture = capture_response(spider.crawler, response, archive=spider.source.archive)
            if document is not None and document.capture is None:
                document = replace(document, capture=capture)
        spider.counts[f"recheck_{verdict.outcome}"] += 1
        spider.events.emit(
            "recheck",
            spider.source_id,
            document_id=item.document_id,
            url=item.url,
            outcome=verdict.outcome,
            status=verdict.status,
            detail=verdict.detail,
            final_url=final_url,
            document=document_to_dict(document) if document is not None else None,
            capture=capture.to_dict() if capture is not None else None,
        )


class RecheckPageSpider(_RecheckMixin, SourceSpider):
    """Re-checks the items of a ``site`` or ``feed`` source: one request per stored item URL."""

    kind = "recheck"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.items = self._load_items(self.state)

    async def start(self) -> AsyncIterator[Any]:
        """The stored item URLs (404/410 reach the callback; redirects are followed)."""
        self.main_ok = True  # a re-check has no main URL: each item stands alone
        for item in self.items:
            if not item.url.lower().startswith(("http://", "https://")):
                self.emit_recheck(item, Verdict("unknown", 0, "not an http(s) URL"))
                continue
            yield scrapy.Request(
                item.url,
                callback=self.parse_item,
                errback=self.item_failed,
                cb_kwargs={"item": item},
                dont_filter=True,
                meta={"handle_httpstatus_list": [404, 410]},
            )

    def parse_item(self, response: Response, item: RecheckItemSpec) -> None:
        """Classify the response; extract the text of a present page whose stored text came from one."""
        self.emit_fetched(response)
        verdict = classify_page(response.status, item.url, response.url)
        document = None
        if verdict.outcome == "present" and item.extraction == "page" and isinstance(response, TextResponse):
            try:
                extracted = extract_article(decode_body(response), response.url)
            except ExtractionError as exc:
                verdict = Verdict("unknown", response.status, f"no text extracted: {exc}")
            else:
                document = make_document(
                    source_id=self.source_id,
                    kind=self.source.kind,
                    url=item.url,
                    doc_id=item.document_id,
                    title=extracted.title,
                    text=extracted.text,
                    published=extracted.published,
                    fetched=self.now(),
                    language_hint=extracted.language_hint or self.source.language,
                    author=extracted.author,
                    extraction="page",
                    outlet=self.source.outlet or "",
                    links=extracted.links,
                    passage_max_words=self.passage_max_words,
                )
        self.emit_recheck(item, verdict, final_url=response.url, document=document, response=response)

    def item_failed(self, failure: Failure) -> None:
        """A failed fetch (network, 5xx after retries, robots, refused address) decides nothing."""
        request = getattr(failure, "request", None)
        item = request.cb_kwargs.get("item") if request is not None else None
        reason, message = failure_reason(failure)
        status = int(reason[5:]) if reason.startswith("http_") and reason[5:].isdigit() else 0
        if isinstance(item, RecheckItemSpec):
            self.emit_recheck(item, Verdict("unknown", status, f"{reason}: {message}"))


class RecheckTelegramSpider(_RecheckMixin, TelegramSpider):
    """Re-checks posts of a ``telegram`` source, each from the preview page ending at it.

    A present post is rebuilt exactly as the crawl builds it (:meth:`TelegramSpider._emit_post`).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.name = f"recheck:{self.source.id}"
        self.items = [i for i in self._load_items(self.state) if i.message_id is not None]
        self._current: RecheckItemSpec | None = None
        self._built: Document | None = None

    async def start(self) -> AsyncIterator[Any]:
        """One ``?before=<id + 1>`` page per post."""
        self.main_ok = True
        for item in self.items:
            assert item.message_id is not None
            yield scrapy.Request(
                f"{self.base}/s/{self.source.channel}?before={item.message_id + 1}",
                callback=self.parse_post_page,
                errback=self.post_page_failed,
                cb_kwargs={"item": item},
                dont_filter=True,
            )

    def parse_post_page(self, response: Response, item: RecheckItemSpec) -> None:
        """Present, missing or unknown, from the ids the page shows."""
        self.emit_fetched(response)
        assert item.message_id is not None
        try:
            page = parse_channel_page(decode_body(response), self.source.channel, base_url=self.base)
        except ParseError as exc:
            self.emit_recheck(item, Verdict("unknown", response.status, f"not a Telegram preview page: {exc}"))
            return
        verdict = classify_telegram(page.message_ids, self.source.channel, item.message_id)
        if verdict.outcome == "missing" and len(page.posts) == 0:
            verdict = Verdict("unknown", response.status, "no posts parsed from the page")
        document = None
        if verdict.outcome == "present":
            post = next((p for p in page.posts if p.message_id == item.message_id), None)
            if post is not None:
                self._built = None
                self._emit_post(post)  # builds the document; emit_document below catches it
                document = self._built
        self.emit_recheck(item, verdict, final_url=response.url, document=document, response=response)

    def emit_document(self, key: str, document: Document, response: Response | None = None) -> None:
        """Keep the document :meth:`_emit_post` built instead of emitting it as a crawl result."""
        self._built = document

    def post_page_failed(self, failure: Failure) -> None:
        """A failed page decides nothing about the post."""
        request = getattr(failure, "request", None)
        item = request.cb_kwargs.get("item") if request is not None else None
        reason, message = failure_reason(failure)
        status = int(reason[5:]) if reason.startswith("http_") and reason[5:].isdigit() else 0
        if isinstance(item, RecheckItemSpec):
            self.emit_recheck(item, Verdict("unknown", status, f"{reason}: {message}"))

    def closed(self, reason: str) -> None:
        """``source_done`` only: a re-check moves no crawl state (watermark, backfill)."""
        SourceSpider.closed(self, reason)


def recheck_spider_for(kind: str) -> type[SourceSpider] | None:
    """The re-check spider of a source kind (None: the kind's items are not re-checked)."""
    if kind == "telegram":
        return RecheckTelegramSpider
    if kind in ("site", "feed"):
        return RecheckPageSpider
    return None
