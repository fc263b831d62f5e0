"""Search filters: the query's field filters and the request's filter parameters, checked and
resolved into :class:`~core.documents.SearchFilters` (what every backend applies).

``source:`` ``lang:`` ``kind:`` map to the index's own filters; ``actor:`` ``country:`` ``tag:``
resolve through the configured sources' metadata to source ids; ``outlet:`` is applied to the
documents of the hits (outlets are per document: a site source's pages carry their own host).
A value that names nothing known is refused with :class:`~core.errors.UnknownFilterValue`
listing the known values (HTTP 400, CLI exit 2), never answered with an empty list.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from core.documents import SearchFilters
from core.errors import UnknownFilterValue
from core.query import ParsedQuery
from core.settings import ACTOR_TYPES, SOURCE_KINDS
from monitors.copies import normalize_outlet
from narrawatch.app import App

__all__ = ["ResolvedFilters", "resolve_filters"]


@dataclass(frozen=True)
class ResolvedFilters:
    """What a search is limited to. ``empty``: the filters exclude everything (a valid actor no
    configured source has), so no backend is asked."""

    filters: SearchFilters
    outlets: tuple[str, ...] = ()
    """Normalised outlets a hit's document must have (any of them); empty: any."""
    exclude_outlets: tuple[str, ...] = ()
    empty: bool = False


def _check(what: str, values: Iterable[str], known: Iterable[str], *, fold: bool = False) -> None:
    known_set = {k.lower() for k in known} if fold else set(known)
    bad = [v for v in values if (v.lower() if fold else v) not in known_set]
    if bad:
        raise UnknownFilterValue(what, bad, sorted(set(known)))


def _pick(given: Sequence[str], excluded: Sequence[str], known: Iterable[str]) -> tuple[set[str] | None, bool]:
    """The allowed set (None: any) from positive values and exclusions; and whether it is empty."""
    allowed: set[str] | None = set(given) if given else None
    if excluded:
        allowed = (allowed if allowed is not None else set(known)) - set(excluded)
    return allowed, allowed is not None and not allowed


def resolve_filters(
    app: App,
    parsed: ParsedQuery | None,
    *,
    sources: Sequence[str] = (),
    languages: Sequence[str] = (),
    kinds: Sequence[str] = (),
    outlets: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
) -> ResolvedFilters:
    """Check every filter value against what exists and combine the query's fields with the
    request's parameters (both must hold). Raises :class:`~core.errors.UnknownFilterValue`."""

    def field(name: str, *, negated: bool = False) -> tuple[str, ...]:
        return parsed.values(name, negated=negated) if parsed is not None else ()

    configured = {s.id: s for s in app.config.sources}
    in_index = app.index.count("source") if (sources or field("source") or field("source", negated=True)) else {}
    known_sources = set(configured) | set(in_index)
    _check("source", [*sources, *field("source"), *field("source", negated=True)], known_sources)

    lang_values = [*languages, *field("lang"), *field("lang", negated=True)]
    known_langs: set[str] = set(app.index.count("language")) if lang_values else set()
    _check("language", [v.lower() for v in lang_values], known_langs)

    kind_values = [*kinds, *field("kind"), *field("kind", negated=True)]
    known_kinds = set(SOURCE_KINDS.names()) | {s.kind for s in configured.values()}
    if kind_values:
        known_kinds |= set(app.index.count("kind"))
    _check("kind", [v.lower() for v in kind_values], known_kinds)

    actors = [v.lower() for v in (*field("actor"), *field("actor", negated=True))]
    _check("actor", actors, ACTOR_TYPES)
    countries = [v.upper() for v in (*field("country"), *field("country", negated=True))]
    _check("country", countries, {s.country for s in configured.values() if s.country})
    tags = [*field("tag"), *field("tag", negated=True)]
    _check("tag", tags, {t for s in configured.values() for t in s.tags}, fold=True)

    empty = False
    allowed_sources: set[str] | None = None
    for given in (tuple(sources), field("source")):
        if given:
            allowed_sources = set(given) if allowed_sources is None else allowed_sources & set(given)
    if field("source", negated=True):
        allowed_sources = (allowed_sources if allowed_sources is not None else known_sources) - set(
            field("source", negated=True)
        )
    for name, attr, norm in (("actor", "actor", str.lower), ("country", "country", str.upper)):
        want, drop = {norm(v) for v in field(name)}, {norm(v) for v in field(name, negated=True)}
        if want or drop:
            ids = {
                sid
                for sid, s in configured.items()
                if (not want or (getattr(s, attr) or "") in want) and (getattr(s, attr) or "") not in drop
            }
            allowed_sources = ids if allowed_sources is None else allowed_sources & ids
    want_tags = {t.lower() for t in field("tag")}
    drop_tags = {t.lower() for t in field("tag", negated=True)}
    if want_tags or drop_tags:
        ids = set()
        for sid, s in configured.items():
            have = {t.lower() for t in s.tags}
            if (not want_tags or have & want_tags) and not have & drop_tags:
                ids.add(sid)
        allowed_sources = ids if allowed_sources is None else allowed_sources & ids
    empty = empty or (allowed_sources is not None and not allowed_sources)

    langs: set[str] | None = None
    for given in (tuple(v.lower() for v in languages), tuple(v.lower() for v in field("lang"))):
        if given:
            langs = set(given) if langs is None else langs & set(given)
    lang_drop = {v.lower() for v in field("lang", negated=True)}
    if lang_drop:
        langs = (langs if langs is not None else known_langs) - lang_drop
    empty = empty or (langs is not None and not langs)

    kind_set: set[str] | None = None
    for given in (tuple(v.lower() for v in kinds), tuple(v.lower() for v in field("kind"))):
        if given:
            kind_set = set(given) if kind_set is None else kind_set & set(given)
    kind_drop = {v.lower() for v in field("kind", negated=True)}
    if kind_drop:
        kind_set = (kind_set if kind_set is not None else known_kinds) - kind_drop
    empty = empty or (kind_set is not None and not kind_set)

    want_outlets = tuple(dict.fromkeys(normalize_outlet(o) for o in (*outlets, *field("outlet"))))
    drop_outlets = tuple(dict.fromkeys(normalize_outlet(o) for o in field("outlet", negated=True)))
    return ResolvedFilters(
        filters=SearchFilters(
            sources=tuple(sorted(allowed_sources or ())),
            languages=tuple(sorted(langs or ())),
            kinds=tuple(sorted(kind_set or ())),
            since=since,
            until=until,
        ),
        outlets=want_outlets,
        exclude_outlets=drop_outlets,
        empty=empty,
    )
