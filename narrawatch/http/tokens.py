"""API tokens: created once, stored hashed in ``<data_dir>/tokens.sqlite`` (or the shared
PostgreSQL state schema with ``state.backend: postgresql``), with a role.

A token is ``nw_`` + 32 random bytes (URL-safe base64). Only its SHA-256 is stored: tokens are
high-entropy random secrets, so a salted slow hash would add nothing but lookup cost (a stolen
database does not reveal usable tokens either way). Roles are ordered: ``read`` < ``analyst``;
an ``analyst`` token can do everything a ``read`` token can, plus acknowledge alerts and
promote themes. A revoked token stays in the table (for ``token list``) and is refused.

Guessing is rate-limited per client address (:class:`FailureLimiter`): after
``api.auth_failures_per_minute`` failed logins or bad tokens within a minute, further attempts
from that address get 429 with ``Retry-After`` until the oldest failure is a minute old.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from core.errors import NarrawatchError, UnknownNameError
from core.settings import Config
from core.sql import SqlDatabase
from core.sqlite import Store, open_database
from core.timefmt import from_iso

__all__ = [
    "ROLES",
    "FailureLimiter",
    "Role",
    "TokenInfo",
    "TokenStore",
    "create_token",
    "hash_token",
    "list_tokens",
    "revoke_token",
    "role_allows",
]

Role = Literal["read", "analyst"]
ROLES: tuple[Role, ...] = ("read", "analyst")
"""In increasing order of what they allow."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL,
    revoked_at TEXT,
    last_used TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS tokens_active_name ON tokens (name) WHERE revoked_at IS NULL;
"""


def hash_token(token: str) -> str:
    """SHA-256 hex of a token (what the store keeps)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def role_allows(have: str, need: str) -> bool:
    """True when role ``have`` includes the rights of role ``need``."""
    if have not in ROLES or need not in ROLES:
        return False
    names: tuple[str, ...] = ROLES
    return names.index(have) >= names.index(need)


@dataclass(frozen=True)
class TokenInfo:
    """A stored token (never the token itself)."""

    name: str
    role: str
    created: datetime
    revoked_at: datetime | None
    last_used: datetime | None
    token_hash: str

    @property
    def active(self) -> bool:
        """Not revoked."""
        return self.revoked_at is None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (without the hash)."""
        return {
            "name": self.name,
            "role": self.role,
            "created": self.created.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "last_used": self.last_used.isoformat() if self.last_used else None,
        }


def _info(row: tuple[Any, ...]) -> TokenInfo:
    return TokenInfo(
        name=row[0],
        role=row[1],
        created=datetime.fromisoformat(row[2]),
        revoked_at=from_iso(row[3]),
        last_used=from_iso(row[4]),
        token_hash=row[5],
    )


class TokenStore(Store):
    """Table of hashed tokens: a SQLite file (0600, see :mod:`core.sqlite`) or a shared
    :class:`~core.sql.SqlDatabase` (PostgreSQL); thread-safe."""

    def __init__(self, path: Path | str | SqlDatabase) -> None:
        self._db, self._owns_db = open_database(path, synchronous="FULL")
        self._db.script(_SCHEMA)

    @classmethod
    def for_config(cls, config: Config) -> TokenStore:
        """The store ``state.backend`` names: ``<data_dir>/tokens.sqlite`` or the PostgreSQL state
        schema (this store then owns the connection pool it opened)."""
        from narrawatch.state import open_state

        return open_state(config).tokens(owned=True)

    def create(self, name: str, role: str, now: datetime | None = None) -> str:
        """Create a token and return it (the only time it is visible)."""
        if role not in ROLES:
            raise UnknownNameError("role", role, ROLES)
        if not name or len(name) > 100 or not name.isprintable():
            raise NarrawatchError("a token name is 1-100 printable characters")
        token = "nw_" + secrets.token_urlsafe(32)
        created = (now or datetime.now(UTC)).isoformat()
        with self._db.connection() as db:
            try:
                db.execute(
                    "INSERT INTO tokens (name, role, token_hash, created) VALUES (?, ?, ?, ?)",
                    (name, role, hash_token(token), created),
                )
            except self._db.integrity_error:
                raise NarrawatchError(f"an active token named {name!r} exists; revoke it first") from None
        return token

    def revoke(self, name: str, now: datetime | None = None) -> bool:
        """Revoke the active token of this name; False if there is none."""
        with self._db.connection() as db:
            cur = db.execute(
                "UPDATE tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                ((now or datetime.now(UTC)).isoformat(), name),
            )
        return cur.rowcount > 0

    def list(self) -> list[TokenInfo]:
        """Every token, active first, then by name."""
        with self._db.connection() as db:
            rows = db.execute(
                "SELECT name, role, created, revoked_at, last_used, token_hash FROM tokens"
                " ORDER BY revoked_at IS NOT NULL, name, id"
            ).fetchall()
        return [_info(r) for r in rows]

    def lookup_hash(self, token_hash: str) -> TokenInfo | None:
        """The token with this hash (active or revoked), or None."""
        with self._db.connection() as db:
            row = db.execute(
                "SELECT name, role, created, revoked_at, last_used, token_hash FROM tokens WHERE token_hash = ?",
                (token_hash,),
            ).fetchone()
        if row is None or not hmac.compare_digest(row[5], token_hash):
            return None
        return _info(row)

    def verify(self, token: str) -> TokenInfo | None:
        """The token's info when it exists (revoked or not); records its last use."""
        info = self.lookup_hash(hash_token(token))
        if info is not None and info.active:
            with self._db.connection() as db:
                db.execute(
                    "UPDATE tokens SET last_used = ? WHERE token_hash = ?",
                    (datetime.now(UTC).isoformat(timespec="seconds"), info.token_hash),
                )
        return info


class FailureLimiter:
    """Failed authentication attempts per client address in a sliding window, kept in memory.

    Per process (``narrawatch run`` and ``narrawatch serve`` count separately) and forgotten on
    restart: it slows guessing down, it is not an audit log. At most ``max_clients`` addresses are
    tracked; when full, the address with the oldest latest failure is forgotten first.
    """

    def __init__(
        self,
        limit: int = 10,
        window: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.max_clients = max_clients
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, client: str, now: float) -> deque[float] | None:
        times = self._failures.get(client)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[client]
            return None
        return times

    def retry_after(self, client: str) -> int:
        """Seconds ``client`` must wait before its next attempt (0: it may try now)."""
        with self._lock:
            now = self.clock()
            times = self._recent(client, now)
            if times is None or len(times) < self.limit:
                return 0
            return max(1, math.ceil(times[-self.limit] + self.window - now))

    def record_failure(self, client: str) -> None:
        """Count one failed attempt by ``client``."""
        with self._lock:
            now = self.clock()
            times = self._recent(client, now)
            if times is None:
                if len(self._failures) >= self.max_clients:
                    oldest = min(self._failures, key=lambda c: self._failures[c][-1])
                    del self._failures[oldest]
                times = self._failures[client] = deque(maxlen=self.limit)
            times.append(now)


def create_token(config: Config, name: str, role: str) -> str:
    """``narrawatch token create NAME --role read|analyst``: returns the token (show it once)."""
    with TokenStore.for_config(config) as store:
        return store.create(name, role)


def revoke_token(config: Config, name: str) -> bool:
    """``narrawatch token revoke NAME``: False if no active token has that name."""
    with TokenStore.for_config(config) as store:
        return store.revoke(name)


def list_tokens(config: Config) -> list[dict[str, Any]]:
    """``narrawatch token list``: name, role, created, revoked_at, last_used of every token."""
    with TokenStore.for_config(config) as store:
        return [t.as_dict() for t in store.list()]
