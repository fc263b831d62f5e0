"""The search query syntax: parsed once, here, into a frozen AST that every backend translates.

Syntax (web-search style; see README "Query syntax")::

    nato russia              both words (implicit AND)
    "ядерного оружия"        a phrase (words next to each other, in this order)
    nato OR otan             either (OR binds tighter than AND: ``nato OR otan russia`` is
                             ``(nato OR otan) AND russia``); ``|`` is the same as ``OR``
    nato AND russia          explicit AND (the same as a space)
    -ukraine / NOT ukraine   without the word (or ``-"a phrase"``, ``NOT (a OR b)``)
    (a OR b) c               grouping
    source:ID lang:ru outlet:t.me/x kind:telegram actor:state_media country:RU tag:x
                             field filters; a repeated field means any of its values
                             (``lang:ru lang:uk``, also ``lang:ru,uk``); ``-lang:en`` excludes

Operators are upper-case (``or`` is a word). Words are ``\\w+`` runs, lower-cased with ``ё``
folded to ``е``; a token that splits into several words (``пресс-секретарь``, ``U.S.``) is a phrase.
A query must have at least one word or phrase outside a NOT, or at least one field filter.

Pure: no I/O, no imports from other packages of ours except :mod:`core.errors`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from core.errors import QuerySyntaxError

__all__ = [
    "FIELDS",
    "And",
    "FieldFilter",
    "Node",
    "Not",
    "Or",
    "ParsedQuery",
    "Phrase",
    "Term",
    "fold_word",
    "parse_query",
    "query_words",
]

FIELDS = ("source", "lang", "outlet", "kind", "actor", "country", "tag")
"""Field names a query may filter on (``language:`` is an alias of ``lang:``)."""
_ALIASES = {"language": "lang", "sources": "source", "languages": "lang", "tags": "tag"}
_NOT_FIELDS = {"http", "https", "ftp", "mailto", "tg"}
"""``name:`` prefixes that are text (a pasted URL), not an unknown field."""

_WORD = re.compile(r"\w+", re.UNICODE)


def fold_word(word: str) -> str:
    """How a query word is compared: lower-cased, ``ё`` folded to ``е``."""
    return word.lower().replace("ё", "е")


def query_words(text: str) -> tuple[str, ...]:
    """``text`` split into folded ``\\w+`` words."""
    return tuple(fold_word(w) for w in _WORD.findall(text))


@dataclass(frozen=True)
class Term:
    """One word (folded)."""

    word: str
    surface: str = field(default="", compare=False)
    """The word as typed (case kept: embedders are case-sensitive)."""

    def __str__(self) -> str:
        return self.word


@dataclass(frozen=True)
class Phrase:
    """Two or more words next to each other, in order (folded)."""

    words: tuple[str, ...]
    surface: str = field(default="", compare=False)
    """The phrase as typed."""

    def __str__(self) -> str:
        return '"' + " ".join(self.words) + '"'


@dataclass(frozen=True)
class Not:
    """Documents without ``child``. Only inside an :class:`And` (never alone, never in an Or)."""

    child: Node

    def __str__(self) -> str:
        return f"NOT {_wrap(self.child)}"


@dataclass(frozen=True)
class And:
    """Every child (a :class:`Not` child: none of it). At least one child is positive."""

    children: tuple[Node, ...]

    def __str__(self) -> str:
        return " AND ".join(_wrap(c) for c in self.children)


@dataclass(frozen=True)
class Or:
    """Any child (no child is a :class:`Not`)."""

    children: tuple[Node, ...]

    def __str__(self) -> str:
        return " OR ".join(_wrap(c) for c in self.children)


Node = Term | Phrase | Not | And | Or
"""A text expression."""


def _wrap(node: Node) -> str:
    return f"({node})" if isinstance(node, And | Or) else str(node)


@dataclass(frozen=True)
class FieldFilter:
    """``field:value`` (values of one field are alternatives); ``negated``: ``-field:value``."""

    field: str
    values: tuple[str, ...]
    negated: bool = False


@dataclass(frozen=True)
class ParsedQuery:
    """A parsed query: the text expression (None when the query is only field filters) and filters."""

    source: str
    text: Node | None
    filters: tuple[FieldFilter, ...] = ()

    def positive_words(self) -> tuple[str, ...]:
        """Words outside any NOT, in query order (what the semantic side embeds)."""
        return tuple(_positive(self.text)) if self.text is not None else ()

    def negative_words(self) -> tuple[str, ...]:
        """Words under a NOT."""
        return tuple(_negative(self.text, False)) if self.text is not None else ()

    @property
    def positive_text(self) -> str:
        """The positive words as typed (case kept), one string without operators or fields: what
        the semantic side embeds and highlights look for."""
        return " ".join(_surfaces(self.text)) if self.text is not None else ""

    def values(self, field: str, *, negated: bool = False) -> tuple[str, ...]:
        """Every value given for ``field`` (positive or ``negated``), in query order, unique."""
        out: dict[str, None] = {}
        for f in self.filters:
            if f.field == field and f.negated == negated:
                out.update(dict.fromkeys(f.values))
        return tuple(out)

    def __str__(self) -> str:
        parts = [str(self.text)] if self.text is not None else []
        for f in self.filters:
            parts.append(("-" if f.negated else "") + f"{f.field}:" + ",".join(f.values))
        return " ".join(parts)


def _positive(node: Node) -> Iterator[str]:
    if isinstance(node, Term):
        yield node.word
    elif isinstance(node, Phrase):
        yield from node.words
    elif isinstance(node, And | Or):
        for c in node.children:
            yield from _positive(c)


def _surfaces(node: Node) -> Iterator[str]:
    if isinstance(node, Term | Phrase):
        yield node.surface or str(node).strip('"')
    elif isinstance(node, And | Or):
        for c in node.children:
            yield from _surfaces(c)


def _negative(node: Node, under: bool) -> Iterator[str]:
    if isinstance(node, Term):
        if under:
            yield node.word
    elif isinstance(node, Phrase):
        if under:
            yield from node.words
    elif isinstance(node, Not):
        yield from _negative(node.child, True)
    else:
        for c in node.children:
            yield from _negative(c, under)


# -- tokenizer ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tok:
    kind: str  # WORD PHRASE FIELD LPAREN RPAREN AND OR NOT MINUS
    value: str
    pos: int
    field: str = ""


_SPECIAL = set('()"')


def _error(source: str, pos: int, message: str) -> QuerySyntaxError:
    return QuerySyntaxError(message, source, pos)


def _read_phrase(source: str, i: int) -> tuple[str, int]:
    end = source.find('"', i + 1)
    if end < 0:
        raise _error(source, i, "unclosed quote")
    return source[i + 1 : end], end + 1


def _tokens(source: str) -> list[_Tok]:
    out: list[_Tok] = []
    i, n = 0, len(source)
    while i < n:
        c = source[i]
        if c.isspace():
            i += 1
            continue
        if c in "()":
            out.append(_Tok("LPAREN" if c == "(" else "RPAREN", c, i))
            i += 1
            continue
        if c == '"':
            text, i2 = _read_phrase(source, i)
            out.append(_Tok("PHRASE", text, i))
            i = i2
            continue
        if c == "|":
            out.append(_Tok("OR", c, i))
            i += 1
            continue
        if c == "-" and i + 1 < n and not source[i + 1].isspace() and source[i + 1] != "-":
            out.append(_Tok("MINUS", c, i))
            i += 1
            continue
        start = i
        while i < n and not source[i].isspace() and source[i] not in _SPECIAL and source[i] != "|":
            i += 1
        word = source[start:i]
        if word in ("AND", "OR", "NOT"):
            out.append(_Tok(word, word, start))
            continue
        if word == "&&":
            out.append(_Tok("AND", word, start))
            continue
        name, colon, value = word.partition(":")
        if colon and name and re.fullmatch(r"[A-Za-z]+", name) and name.lower() not in _NOT_FIELDS:
            field = _ALIASES.get(name.lower(), name.lower())
            if field not in FIELDS:
                raise _error(source, start, f"unknown field {name!r}; known fields: {', '.join(FIELDS)}")
            if not value and i < n and source[i] == '"':
                value, i = _read_phrase(source, i)
            if not value.strip():
                raise _error(source, start, f"{name}: needs a value")
            out.append(_Tok("FIELD", value.strip(), start, field=field))
            continue
        out.append(_Tok("WORD", word, start))
    return out


# -- parser ---------------------------------------------------------------------------------------


class _Parser:
    """and_expr := or_expr ([AND] or_expr)* ; or_expr := unary (OR unary)* ;
    unary := (NOT | -) unary | primary ; primary := ( and_expr ) | PHRASE | WORD | FIELD."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.toks = _tokens(source)
        self.i = 0
        self.filters: list[FieldFilter] = []

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def end_pos(self) -> int:
        return len(self.source)

    def parse(self) -> ParsedQuery:
        node = self.and_expr(top=True, depth=0)
        tok = self.peek()
        if tok is not None:
            raise _error(
                self.source,
                tok.pos,
                f"unexpected {tok.value!r}" + (" (no matching '(')" if tok.kind == "RPAREN" else ""),
            )
        text = _simplify(node) if node is not None else None
        if text is not None:
            _check(text, self.source)
        if text is None and not self.filters:
            raise _error(self.source, 0, "nothing to search for: give a word, a phrase or a field filter")
        if text is not None and not _has_positive(text):
            raise _error(self.source, 0, "a query needs a word or phrase that is not excluded (NOT/-)")
        return ParsedQuery(self.source, text, tuple(self.filters))

    def and_expr(self, *, top: bool, depth: int) -> Node | None:
        children: list[Node] = []
        while True:
            tok = self.peek()
            if tok is None or tok.kind == "RPAREN":
                break
            if tok.kind == "AND":
                if not children and not self._had_filter_before(tok):
                    raise _error(self.source, tok.pos, "AND needs something before it")
                self.take()
                nxt = self.peek()
                if nxt is None or nxt.kind in ("RPAREN", "AND", "OR"):
                    raise _error(self.source, tok.pos, "AND needs something after it")
                continue
            if tok.kind == "OR":
                raise _error(self.source, tok.pos, "OR needs something before it")
            node = self.or_expr(top=top, depth=depth)
            if node is not None:
                children.append(node)
        if not children:
            return None
        return children[0] if len(children) == 1 else And(tuple(children))

    def _had_filter_before(self, tok: _Tok) -> bool:
        return self.i > 0 and self.toks[self.i - 1].kind == "FIELD"

    def or_expr(self, *, top: bool, depth: int) -> Node | None:
        first_tok = self.peek()
        first = self.unary(top=top, depth=depth, in_or=False)
        alts: list[Node] = []
        field_alts = first is None
        while (tok := self.peek()) is not None and tok.kind == "OR":
            self.take()
            nxt = self.peek()
            if nxt is None or nxt.kind in ("RPAREN", "AND", "OR"):
                raise _error(self.source, tok.pos, "OR needs something after it")
            node = self.unary(top=top, depth=depth, in_or=True, field_group=field_alts)
            if (node is None) != field_alts:
                raise _error(
                    self.source,
                    tok.pos,
                    "OR cannot join a field filter and text (write field filters beside the text: `(a OR b) lang:ru`)",
                )
            if node is not None:
                alts.append(node)
        if first is None:
            return None
        if not alts:
            return first
        del first_tok
        return Or((first, *alts))

    def unary(
        self, *, top: bool, depth: int, in_or: bool, field_group: bool = False, negated: bool = False
    ) -> Node | None:
        tok = self.peek()
        if tok is None:
            raise _error(self.source, self.end_pos(), "query ends too early")
        if tok.kind in ("NOT", "MINUS"):
            self.take()
            if self.peek() is None:
                raise _error(self.source, tok.pos, f"{tok.value} needs something after it")
            if self.peek() is not None and self.peek().kind == "FIELD":  # type: ignore[union-attr]
                return self.field(top=top, depth=depth, negated=not negated)
            if in_or:
                raise _error(
                    self.source, tok.pos, f"{tok.value} cannot be an alternative of OR; write `a -b` or NOT (a OR b)"
                )
            child = self.unary(top=top, depth=depth, in_or=False, negated=not negated)
            if child is None:
                raise _error(self.source, tok.pos, f"{tok.value} needs a word, phrase or group after it")
            return Not(child)
        return self.primary(top=top, depth=depth, field_group=field_group, negated=negated)

    def field(self, *, top: bool, depth: int, negated: bool) -> Node | None:
        """Record a field filter; a filter is no text node, so this returns None."""
        tok = self.take()
        if depth > 0 and not self._parens_only_fields():
            raise _error(self.source, tok.pos, "field filters go at the top level of a query, not inside ( ) with text")
        values = tuple(v.strip() for v in tok.value.split(",") if v.strip())
        self.filters.append(FieldFilter(tok.field, values, negated))
        del top
        return None

    def _parens_only_fields(self) -> bool:
        # inside "( ... )": allowed only when every token up to the matching ")" is a field or OR
        j, depth = self.i - 1, 0
        while j >= 0 and not (self.toks[j].kind == "LPAREN" and depth == 0):
            if self.toks[j].kind == "RPAREN":
                depth += 1
            elif self.toks[j].kind == "LPAREN":
                depth -= 1
            elif self.toks[j].kind not in ("FIELD", "OR"):
                return False
            j -= 1
        k, depth = self.i, 0
        while k < len(self.toks):
            t = self.toks[k]
            if t.kind == "RPAREN":
                if depth == 0:
                    return True
                depth -= 1
            elif t.kind == "LPAREN":
                depth += 1
            elif t.kind not in ("FIELD", "OR"):
                return False
            k += 1
        return True

    def primary(self, *, top: bool, depth: int, field_group: bool, negated: bool) -> Node | None:
        tok = self.peek()
        assert tok is not None
        if tok.kind == "FIELD":
            return self.field(top=top, depth=depth, negated=negated)
        self.take()
        if tok.kind == "LPAREN":
            inner = self.and_expr(top=top, depth=depth + 1)
            close = self.peek()
            if close is None or close.kind != "RPAREN":
                raise _error(self.source, tok.pos, "unclosed '('")
            self.take()
            if inner is None and self.toks[self.i - 2].kind == "LPAREN":
                raise _error(self.source, tok.pos, "empty ( )")
            return inner
        if tok.kind == "RPAREN":
            raise _error(self.source, tok.pos, "unexpected ')' (no matching '(')")
        if tok.kind in ("PHRASE", "WORD"):
            words = query_words(tok.value)
            if not words:
                if tok.kind == "PHRASE":
                    raise _error(self.source, tok.pos, "empty phrase")
                return self._skip_noise(tok, top=top, depth=depth, field_group=field_group, negated=negated)
            surface = " ".join(_WORD.findall(tok.value))
            return Term(words[0], surface) if len(words) == 1 else Phrase(words, surface)
        raise _error(self.source, tok.pos, f"unexpected {tok.value!r}")

    def _skip_noise(self, tok: _Tok, *, top: bool, depth: int, field_group: bool, negated: bool) -> Node | None:
        # A token without letters or digits ("&", "…") carries nothing to search for.
        nxt = self.peek()
        if nxt is None or nxt.kind in ("RPAREN", "AND", "OR"):
            raise _error(self.source, tok.pos, f"{tok.value!r} has no letters or digits to search for")
        return self.unary(top=top, depth=depth, in_or=False, field_group=field_group, negated=negated)


def _has_positive(node: Node) -> bool:
    if isinstance(node, Term | Phrase):
        return True
    if isinstance(node, Not):
        return False
    if isinstance(node, Or):
        return all(_has_positive(c) for c in node.children)
    return any(_has_positive(c) for c in node.children)


def _simplify(node: Node) -> Node:
    """Flatten nested And/Or of the same kind and fold NOT NOT x into x."""
    if isinstance(node, Not):
        inner = _simplify(node.child)
        return inner.child if isinstance(inner, Not) else Not(inner)
    if isinstance(node, And | Or):
        kids: list[Node] = []
        for c in node.children:
            s = _simplify(c)
            if type(s) is type(node):
                kids.extend(s.children)
            else:
                kids.append(s)
        kids = list(dict.fromkeys(kids))
        if len(kids) == 1:
            return kids[0]
        return And(tuple(kids)) if isinstance(node, And) else Or(tuple(kids))
    return node


def _check(node: Node, source: str) -> None:
    """Every And has a positive child; a Not is only a child of an And (or the top level with filters)."""
    if isinstance(node, And):
        if not any(_has_positive(c) for c in node.children):
            raise _error(source, 0, "a group needs a word or phrase that is not excluded: (a -b), not (-a -b)")
        for c in node.children:
            _check(c.child if isinstance(c, Not) else c, source)
    elif isinstance(node, Or):
        for c in node.children:
            if isinstance(c, Not) or not _has_positive(c):
                raise _error(source, 0, "OR alternatives cannot be excluded words")
            _check(c, source)
    elif isinstance(node, Not):
        _check(node.child, source)


def parse_query(source: str) -> ParsedQuery:
    """Parse ``source`` (see the module docstring); raises :class:`~core.errors.QuerySyntaxError`."""
    return _Parser(source).parse()
