"""Tantivy full-text index over passages, derived from SQLite and caught up on open.

One tantivy document per passage: its SQLite ``pid``, filter fields (document id, source,
language, kind, published) and the title + passage text in **one body field per analyzer**:
Russian and English text go to stemmed fields (``body_ru``, ``body_en``), every other language
to a lower-cased, unstemmed ``body_plain``. A query is analysed by each field's analyzer and
searched over all three, so "выборы" finds "выборов" in Russian posts and an English query
finds English inflections, without a 3x larger index. ``ё`` is folded to ``е`` in both the
indexed text and the query (tantivy has no such filter).

Tantivy has no transaction shared with SQLite, so it records the last write sequence it holds in
a side file (``fulltext.json``) written atomically *after* each tantivy commit. On open the
writer re-indexes every document written after that sequence (delete by document id, then
add: idempotent), or rebuilds everything when the index is missing, unreadable or of another
schema version.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import tantivy

from core.documents import SearchFilters
from core.errors import IndexBackendError, IndexUnavailable
from core.query import And, Node, Not, Phrase, Term
from index.local_store import SqliteStore, to_micros

__all__ = ["SCHEMA_VERSION", "FullText", "fold_text", "language_field"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
STEMMED = {"ru": "russian", "en": "english"}
"""Languages with their own stemmed body field (tantivy stemmer names)."""
BODY_FIELDS = (*(f"body_{lang}" for lang in STEMMED), "body_plain")
_WORD_RE = re.compile(r"\w+", re.UNICODE)
_HEAP = 64_000_000


_URL_RE = re.compile(r"(?:https?://|www\.|t\.me/)\S+", re.IGNORECASE)


def fold_text(text: str) -> str:
    """Normalisation applied to indexed text and queries alike (ё -> е, URLs removed).

    URLs are dropped because their path words ("t.me/World_Sanctions/31353") would otherwise
    match queries about their topic; links stay searchable through ``Document.links``.
    """
    return _URL_RE.sub(" ", text).replace("ё", "е").replace("Ё", "Е")


def language_field(language: str) -> str:
    """The body field a passage of this language is indexed in."""
    return f"body_{language}" if language in STEMMED else "body_plain"


def _analyzer(stemmer: str | None) -> Any:
    builder = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple()).filter(tantivy.Filter.remove_long(60))
    builder = builder.filter(tantivy.Filter.lowercase())
    if stemmer:
        builder = builder.filter(tantivy.Filter.stemmer(stemmer))
    return builder.build()


def _schema() -> Any:
    sb = tantivy.SchemaBuilder()
    sb.add_integer_field("pid", stored=True, indexed=True, fast=True)
    for name in ("doc_id", "source", "language", "kind"):
        sb.add_text_field(name, tokenizer_name="raw")
    sb.add_integer_field("published", indexed=True, fast=True)
    for name in BODY_FIELDS:
        sb.add_text_field(name, tokenizer_name=f"nw_{name}")
    return sb.build()


def _register(index: Any) -> None:
    for lang, stemmer in STEMMED.items():
        index.register_tokenizer(f"nw_body_{lang}", _analyzer(stemmer))
    index.register_tokenizer("nw_body_plain", _analyzer(None))


def query_text(text: str) -> str:
    """User text reduced to plain words for the tantivy query parser (no operators, no syntax)."""
    return " ".join(w.lower() for w in _WORD_RE.findall(fold_text(text)))


class FullText:
    """The tantivy index of one embedded index directory."""

    def __init__(self, path: Path, *, writable: bool) -> None:
        self.dir = path / "fulltext"
        self.state_file = path / "fulltext.json"
        self.writable = writable
        self.schema = _schema()
        self.writer: Any = None
        self.seq = 0
        self.index: Any = self._open()

    # -- opening ------------------------------------------------------------------------------

    def _read_state(self) -> tuple[int, int]:
        try:
            data = json.loads(self.state_file.read_text("utf-8"))
            return int(data["seq"]), int(data["schema"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0, 0

    def _write_state(self, seq: int) -> None:
        tmp = self.state_file.with_suffix(".json.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"seq": seq, "schema": SCHEMA_VERSION}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.state_file)
        dir_fd = os.open(self.state_file.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self.seq = seq

    def _open(self) -> Any:
        seq, schema_version = self._read_state()
        index: Any = None
        if not self.writable:
            try:
                index = tantivy.Index.open(str(self.dir))
            except (OSError, ValueError) as exc:
                raise IndexUnavailable(f"full-text index at {self.dir} cannot be opened: {exc}") from exc
            _register(index)
            self.seq = seq
            return index
        if schema_version == SCHEMA_VERSION and self.dir.is_dir():
            try:
                index = tantivy.Index.open(str(self.dir))
                _register(index)
                self.writer = self._make_writer(index)
                self.seq = seq
            except IndexBackendError:
                raise
            except Exception as exc:  # a torn or foreign directory: rebuilt from SQLite below
                log.warning("full-text index at %s unreadable (%s); rebuilding from SQLite", self.dir, exc)
                index = None
        if index is None:
            if self.dir.exists():
                shutil.rmtree(self.dir)
            self.dir.mkdir(parents=True)
            index = tantivy.Index(self.schema, path=str(self.dir))
            _register(index)
            self.writer = self._make_writer(index)
            self.seq = -1  # forces a full rebuild in catch_up
        return index

    @staticmethod
    def _make_writer(index: Any) -> Any:
        try:
            return index.writer(_HEAP, 1)
        except ValueError as exc:
            if "Lock" in str(exc):
                raise IndexBackendError(
                    "the embedded index is open for writing in another process; open it read_only"
                ) from exc
            raise

    # -- writing ------------------------------------------------------------------------------

    def catch_up(self, store: SqliteStore) -> int:
        """Re-index what SQLite holds beyond this index's sequence; returns passages added."""
        if self.writer is None:
            raise IndexBackendError("full-text index opened read-only")
        if self.seq < 0:
            now = store.seq()
            self.writer.delete_all_documents()
            added = self._add(store.fulltext_rows(None))
            log.info("full-text index rebuilt from SQLite: %d passages", added)
        else:
            now, doc_ids = store.changed_doc_ids(self.seq)
            if now == self.seq:
                return 0
            for doc_id in doc_ids:
                self.writer.delete_documents_by_term("doc_id", doc_id)
            added = self._add(store.fulltext_rows(doc_ids))
        self.writer.commit()
        self.index.reload()
        self._write_state(now)
        return added

    def _add(self, rows: Iterable[Sequence[Any]]) -> int:
        n = 0
        for pid, doc_id, source, language, kind, published, title, text in rows:
            body = fold_text(f"{title}\n{text}" if title else text)
            fields: dict[str, Any] = {
                "pid": pid,
                "doc_id": doc_id,
                "source": source,
                "language": language,
                "kind": kind,
                "published": published,
                language_field(language): body,
            }
            self.writer.add_document(tantivy.Document(**fields))
            n += 1
        return n

    # -- reading ------------------------------------------------------------------------------

    def reload(self) -> None:
        """See the latest commit (readers in another process than the writer)."""
        self.index.reload()

    def num_docs(self) -> int:
        """Passages in the index (the consistency check compares it with SQLite)."""
        return int(self.index.searcher().num_docs)

    def count_doc(self, doc_id: str) -> int:
        """Passages indexed for one document id."""
        q = tantivy.Query.term_query(self.schema, "doc_id", doc_id)
        return int(self.index.searcher().search(q, 1, count=True).count)

    def search(
        self, text: str, filters: SearchFilters | None, limit: int, expr: Node | None = None
    ) -> list[tuple[int, float]]:
        """BM25 over passages with filters as non-scoring clauses: ``[(pid, score)]`` best first.

        With ``expr`` (:mod:`core.query`) the passage must match the expression; otherwise any
        word of ``text`` matches."""
        if limit <= 0:
            return []
        if expr is not None:
            parsed = self._expr_query(expr)
        else:
            words = query_text(text)
            if not words:
                return []
            parsed = self.index.parse_query(words, list(BODY_FIELDS))
        clauses: list[tuple[Any, Any]] = [(tantivy.Occur.Must, parsed)]
        for clause in self._filter_clauses(filters):
            clauses.append((tantivy.Occur.Must, tantivy.Query.const_score_query(clause, 0.0)))
        query = parsed if len(clauses) == 1 else tantivy.Query.boolean_query(clauses)
        searcher = self.index.searcher()
        hits = searcher.search(query, limit, count=False).hits
        if not hits:
            return []
        pids = searcher.fast_field_values("pid", [addr for _, addr in hits])
        return [(int(pid), float(score)) for (score, _), pid in zip(hits, pids, strict=True) if pid is not None]

    def _expr_query(self, node: Node) -> Any:
        """The tantivy query of a :mod:`core.query` expression over every body field.

        A leaf goes through tantivy's parser as a quoted phrase (one word or several), so each
        body field's analyzer (stemmer) applies; words are ``\\w+`` runs, nothing to escape."""
        if isinstance(node, Term | Phrase):
            words = (node.word,) if isinstance(node, Term) else node.words
            return self.index.parse_query('"' + " ".join(words) + '"', list(BODY_FIELDS))
        if isinstance(node, Not):  # only reached for a Not inside an And (see core.query)
            return tantivy.Query.boolean_query(
                [(tantivy.Occur.Must, tantivy.Query.all_query()), (tantivy.Occur.MustNot, self._expr_query(node.child))]
            )
        if isinstance(node, And):
            clauses = [
                (tantivy.Occur.MustNot, self._expr_query(c.child))
                if isinstance(c, Not)
                else (tantivy.Occur.Must, self._expr_query(c))
                for c in node.children
            ]
            return tantivy.Query.boolean_query(clauses)
        return tantivy.Query.boolean_query([(tantivy.Occur.Should, self._expr_query(c)) for c in node.children])

    def _filter_clauses(self, filters: SearchFilters | None) -> list[Any]:
        if filters is None:
            return []
        out: list[Any] = []
        for field, values in (
            ("source", filters.sources),
            ("language", filters.languages),
            ("kind", filters.kinds),
            ("doc_id", filters.document_ids),
        ):
            if values:
                out.append(tantivy.Query.term_set_query(self.schema, field, list(values)))
        if filters.since is not None or filters.until is not None:
            out.append(
                tantivy.Query.range_query(
                    self.schema,
                    "published",
                    tantivy.FieldType.Integer,
                    None if filters.since is None else to_micros(filters.since),
                    None if filters.until is None else to_micros(filters.until),
                    True,
                    filters.until is None,
                )
            )
        return out

    def close(self) -> None:
        """Release the writer lock (pending merges are waited for)."""
        if self.writer is not None:
            try:
                self.writer.wait_merging_threads()
            except Exception as exc:  # the writer is unusable after this call anyway
                log.debug("tantivy wait_merging_threads: %s", exc)
            self.writer = None
        self.index = None
