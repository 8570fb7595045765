"""Graceful degradation: ``fallback`` and ``StaleCache`` (serve stale data
while fetches fail)."""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Generic, Optional, Tuple, Type, TypeVar, Union, overload

from . import _native, _util
from ._types import Decorator, P, R

V = TypeVar("V")


@dataclass(frozen=True)
class Served(Generic[V]):
    """What :meth:`StaleCache.get_or_fetch` served: the value, whether it is
    stale (the fetch failed with ``error``), and its ``age`` in seconds (0.0
    when fresh)."""

    value: V
    stale: bool
    age: float
    error: Optional[BaseException]


class StaleCache(_native.StaleCache):
    """A stale-while-error cache: every fetch goes to the source; only when
    it raises an ``Exception`` is the last good value for the key served, if
    it is at most ``max_stale`` seconds old (default 300). Keeps at most
    ``capacity`` keys (default 10 000; the oldest makes room). Keys are None,
    bool, int, float, str, bytes or tuples of them. Thread-safe.

    ``get_or_fetch(key, fetch, *args, **kwargs)`` (and ``get_or_fetch_async``)
    return a :class:`Served`; as a decorator (``@cache`` or
    ``@cache(key=..., on_stale=...)``) the function's arguments are the key
    (``key=`` computes another) and the value is returned, fresh or stale;
    ``on_stale(served)`` hears about each stale serve.
    """

    def get_or_fetch(self, key: Any, fetch: Callable[..., V], /, *args: Any, **kwargs: Any) -> Served[V]:
        self._check_key(key)
        try:
            value = fetch(*args, **kwargs)
        except Exception as exc:
            return self._stale_or_raise(key, exc)
        self._put_fresh(key, value)
        return Served(value, False, 0.0, None)

    async def get_or_fetch_async(
        self, key: Any, fetch: Callable[..., Awaitable[V]], /, *args: Any, **kwargs: Any
    ) -> Served[V]:
        self._check_key(key)
        try:
            value = await fetch(*args, **kwargs)
        except Exception as exc:
            return self._stale_or_raise(key, exc)
        self._put_fresh(key, value)
        return Served(value, False, 0.0, None)

    def _stale_or_raise(self, key: Any, exc: Exception) -> Served[Any]:
        hit = self._serve_stale(key)
        if hit is None:
            raise exc
        value, age = hit
        return Served(value, True, age, exc)

    @overload
    def __call__(self, func: Callable[P, R], /) -> Callable[P, R]: ...

    @overload
    def __call__(
        self,
        func: None = None,
        /,
        *,
        key: Optional[Callable[..., Any]] = None,
        on_stale: Optional[Callable[[Served[Any]], Any]] = None,
    ) -> Decorator: ...

    def __call__(
        self,
        func: Any = None,
        /,
        *,
        key: Optional[Callable[..., Any]] = None,
        on_stale: Optional[Callable[[Served[Any]], Any]] = None,
    ) -> Any:
        for name, f in (("key", key), ("on_stale", on_stale)):
            if f is not None and not callable(f):
                raise TypeError(f"{name} must be callable or None, got {type(f).__name__}")
        if func is None:
            return lambda f: self._decorate(f, key, on_stale)
        return self._decorate(func, key, on_stale)

    def _decorate(self, func: Any, key: Any, on_stale: Any) -> Any:
        if not callable(func):
            raise TypeError(f"a stale cache decorates a callable, got {type(func).__name__}")

        def key_of(args: Tuple[Any, ...], kwargs: dict) -> Any:  # type: ignore[type-arg]
            if key is not None:
                return key(*args, **kwargs)
            return (func.__qualname__, args, tuple(sorted(kwargs.items())))

        def seen(served: Served[Any]) -> Any:
            if served.stale and on_stale is not None:
                on_stale(served)
            return served.value

        if _util.is_async(func):

            @functools.wraps(func)
            async def cached_async(*args: Any, **kwargs: Any) -> Any:
                return seen(await self.get_or_fetch_async(key_of(args, kwargs), func, *args, **kwargs))

            return cached_async

        @functools.wraps(func)
        def cached(*args: Any, **kwargs: Any) -> Any:
            return seen(self.get_or_fetch(key_of(args, kwargs), func, *args, **kwargs))

        return cached


def fallback(
    handler: Callable[..., Any],
    *,
    on: Union[Type[BaseException], Tuple[Type[BaseException], ...]] = Exception,
) -> Decorator:
    """``@fallback(handler)``: when the decorated function raises one of
    ``on`` (default every ``Exception``), returns ``handler(exc, *args,
    **kwargs)`` instead — the secondary source (a cache, a default). The
    handler's own exception propagates. On ``async def`` functions the
    handler may be sync or async."""
    if not callable(handler):
        raise TypeError("fallback: handler must be callable")
    if not (isinstance(on, type) and issubclass(on, BaseException)) and not (
        isinstance(on, tuple) and all(isinstance(t, type) and issubclass(t, BaseException) for t in on)
    ):
        raise TypeError("fallback: on must be an exception type or a tuple of them")

    def decorate(func: Any) -> Any:
        if _util.is_async(func):

            @functools.wraps(func)
            async def with_fallback_async(*args: Any, **kwargs: Any) -> Any:
                try:
                    return await func(*args, **kwargs)
                except on as exc:
                    out = handler(exc, *args, **kwargs)
                    return await out if inspect.isawaitable(out) else out

            return with_fallback_async

        @functools.wraps(func)
        def with_fallback(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except on as exc:
                return handler(exc, *args, **kwargs)

        return with_fallback

    return decorate
