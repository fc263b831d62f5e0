"""Config models of the platform source kinds: ``youtube``, ``vk`` and ``rutube``.

Registered with their spiders by :func:`crawlers.sources.register_builtins`; see
``docs/platforms.md`` for what each kind can and cannot reach without an account.
Secrets come only from the environment (``token_env`` names the variable); a source whose
token is missing is valid but *disabled* (:attr:`~core.settings.SourceBase.disabled_reason`).
"""

from __future__ import annotations

import os
import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from core.settings import HttpUrl, SourceBase

__all__ = ["RutubeSource", "VkSource", "YouTubeSource", "rutube_video_id"]

_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class YouTubeSource(SourceBase):
    """A YouTube channel: its public Atom feed, and each new video's captions where offered."""

    kind: Literal["youtube"] = "youtube"
    channel_id: Annotated[str, Field(pattern=r"^UC[A-Za-z0-9_-]{22}$")]
    """The channel id (``UC`` + 22 characters), as in ``youtube.com/channel/<id>``."""
    base_url: HttpUrl = "https://www.youtube.com"
    transcripts: bool = True
    """Fetch each new video's watch page and its caption track; off: the description is the text."""
    max_videos: Annotated[int, Field(ge=1, le=100)] = 15
    """New videos taken from one feed read (the feed lists the 15 newest)."""

    @model_validator(mode="before")
    @classmethod
    def _no_handle(cls, data: Any) -> Any:
        if isinstance(data, dict) and "handle" in data:
            raise ValueError(
                "'handle' is not supported (resolving @handles needs the channel page, which is not"
                " implemented); set channel_id: the UC... id from the channel page's"
                ' <link rel="canonical" href=".../channel/UC...">'
            )
        return data

    @property
    def default_outlet(self) -> str:
        """``youtube.com/channel/<id>``."""
        return f"youtube.com/channel/{self.channel_id}"


class VkSource(SourceBase):
    """A public VKontakte community (or profile) wall read with the official API ``wall.get``."""

    kind: Literal["vk"] = "vk"
    domain: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.]{2,64}$")] | None = None
    """The wall's short name (``vk.com/<domain>``); or give ``owner_id``."""
    owner_id: int | None = None
    """The wall's owner id: negative for communities (``-109125816``), positive for profiles."""
    base_url: HttpUrl = "https://api.vk.com/method"
    api_version: Annotated[str, Field(pattern=r"^\d+\.\d+$")] = "5.199"
    token_env: Annotated[str, Field(pattern=_ENV_NAME)] = "NARRAWATCH_VK_TOKEN"
    """Environment variable holding the service token (anonymous calls are refused by VK)."""
    page_size: Annotated[int, Field(ge=1, le=100)] = 100
    max_pages: Annotated[int, Field(ge=1, le=1000)] = 5
    """Pages (``offset`` steps of ``page_size``) walked on one run; stops early at seen posts."""

    @model_validator(mode="after")
    def _one_wall(self) -> VkSource:
        if (self.domain is None) == (self.owner_id is None):
            raise ValueError("give exactly one of 'domain' or 'owner_id'")
        if self.owner_id == 0:
            raise ValueError("owner_id cannot be 0")
        return self

    @property
    def token(self) -> str:
        """The service token from the environment ('' when unset)."""
        return os.environ.get(self.token_env, "").strip()

    @property
    def disabled_reason(self) -> str:
        """Set while the token variable is unset or empty."""
        if not self.token:
            return f"vk needs {self.token_env} in the environment; disabled until set"
        return ""

    @property
    def wall(self) -> str:
        """The wall as VK writes it: ``<domain>``, ``club<id>`` or ``id<id>``."""
        if self.domain is not None:
            return self.domain
        assert self.owner_id is not None
        return f"club{-self.owner_id}" if self.owner_id < 0 else f"id{self.owner_id}"

    @property
    def default_outlet(self) -> str:
        """``vk.com/<wall>``."""
        return f"vk.com/{self.wall}"


_RUTUBE_ID = re.compile(r"^[0-9a-f]{32}$")
_RUTUBE_URL = re.compile(r"^https?://(?:www\.)?rutube\.ru/(?:video|play/embed|embed)/([0-9a-f]{32})/?(?:[?#].*)?$")


def rutube_video_id(value: str) -> str:
    """A RuTube video id (32 hex digits) from an id or a ``rutube.ru/video/<id>/`` URL."""
    text = value.strip().lower()
    if _RUTUBE_ID.match(text):
        return text
    m = _RUTUBE_URL.match(text)
    if m:
        return m.group(1)
    raise ValueError(f"not a RuTube video id or URL: {value!r}")


class RutubeSource(SourceBase):
    """RuTube videos' metadata from the public JSON API (``/api/play/options/<id>/``)."""

    kind: Literal["rutube"] = "rutube"
    videos: Annotated[tuple[str, ...], Field(min_length=1, max_length=1000)]
    """Video ids (32 hex digits) or ``https://rutube.ru/video/<id>/`` URLs."""
    author_id: Annotated[int, Field(ge=1)] | None = None
    """The channel (author) the videos must belong to; a video of another author is dropped."""
    base_url: HttpUrl = "https://rutube.ru"

    @field_validator("videos")
    @classmethod
    def _video_ids(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(rutube_video_id(x) for x in v))

    @property
    def default_outlet(self) -> str:
        """``rutube.ru/video/person/<author_id>`` when the author is configured, else ``rutube.ru``."""
        return f"rutube.ru/video/person/{self.author_id}" if self.author_id else "rutube.ru"
