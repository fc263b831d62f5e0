"""Registries by short name: source kinds, detectors, alert channels, embedders, index backends.

Nothing registers on import: each package has a ``register_builtins`` function that adds its
built-ins, and the composition root (:func:`narrawatch.builtins.register_builtins`) calls them
before it loads a config. A plugin registers the same way, with :meth:`Registry.add` (or
:meth:`Registry.add_lazy` when its module is expensive to import).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from core.errors import UnknownNameError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object map whose failed lookups list every known name.

    Registering an equal object under the same name again is a no-op, so ``register_builtins``
    functions are idempotent; another object under a taken name is an error.
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self._items: dict[str, T] = {}
        self._lazy: dict[str, Callable[[], T]] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register the decorated object under ``name`` (duplicates are errors)."""

        def deco(obj: T) -> T:
            self.add(name, obj)
            return obj

        return deco

    def add(self, name: str, obj: T) -> None:
        """Register ``obj`` under ``name``; a second registration of the same name fails."""
        if name in self._lazy and name not in self._items:
            raise ValueError(f"{self.what} {name!r} is already registered")
        if name in self._items and self._items[name] is not obj and self._items[name] != obj:
            raise ValueError(f"{self.what} {name!r} is already registered")
        self._items[name] = obj

    def add_lazy(self, name: str, load: Callable[[], T]) -> None:
        """Register ``name`` now, its object on first :meth:`get` (``load()`` imports it).

        For implementations whose module pulls in an optional or heavy library (the
        Elasticsearch client): listing and validating names never imports it.
        """
        if name in self._lazy and self._lazy[name] == load:
            return  # again, loaded or not
        if name in self._items or name in self._lazy:
            raise ValueError(f"{self.what} {name!r} is already registered")
        self._lazy[name] = load

    def get(self, name: str) -> T:
        """Return the object registered as ``name`` or raise :class:`UnknownNameError`."""
        try:
            return self._items[name]
        except KeyError:
            pass
        load = self._lazy.get(name)
        if load is None:
            raise UnknownNameError(self.what, name, self.names())
        obj = load()
        self._items[name] = obj  # the loader stays in _lazy: registering it again stays a no-op
        return obj

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted({*self._items, *self._lazy})

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._lazy

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
