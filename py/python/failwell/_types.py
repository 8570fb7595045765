"""Type helpers shared by the Python layer."""

from __future__ import annotations

import sys
from typing import Any, Callable, Iterable, Optional, Protocol, Type, TypeVar, Union

if sys.version_info >= (3, 10):
    from typing import ParamSpec, TypeGuard as TypeGuard
else:  # pragma: no cover - Python 3.9
    from typing_extensions import ParamSpec, TypeGuard as TypeGuard

P = ParamSpec("P")
R = TypeVar("R")

ExcludeItem = Union[Type[BaseException], Callable[[BaseException], Any]]
Exclude = Optional[Union[ExcludeItem, Iterable[ExcludeItem]]]

class Decorator(Protocol):
    """What ``@x(...)`` with arguments returns: a decorator that keeps the
    wrapped function's signature."""

    def __call__(self, func: Callable[P, R], /) -> Callable[P, R]: ...
