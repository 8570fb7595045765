"""Type helpers shared by the Python layer."""

from __future__ import annotations

import sys
from typing import Any, Callable, Iterable, Optional, Type, TypeVar, Union

if sys.version_info >= (3, 10):
    from typing import ParamSpec
else:  # pragma: no cover - Python 3.9
    from typing_extensions import ParamSpec

P = ParamSpec("P")
R = TypeVar("R")

ExcludeItem = Union[Type[BaseException], Callable[[BaseException], Any]]
Exclude = Optional[Union[ExcludeItem, Iterable[ExcludeItem]]]
