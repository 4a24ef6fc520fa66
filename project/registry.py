"""One registry type for every pluggable family (poolers, schedules, optimizers, data sets, file readers)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from project.errors import ConfigError

T = TypeVar("T")


class Registry(dict[str, T], Generic[T]):
    """A name -> entry mapping with a decorator that refuses duplicates and a lookup that lists the choices."""

    def __init__(self, family: str):
        super().__init__()
        self.family = family

    def register(self, name: str) -> Callable[[T], T]:
        def decorate(entry: T) -> T:
            if name in self:
                raise ValueError(f"{self.family} '{name}' registered twice")
            self[name] = entry
            return entry

        return decorate

    def lookup(self, name: str) -> T:
        if name not in self:
            raise ConfigError(f"unknown {self.family} '{name}'; choose from {sorted(self)}")
        return self[name]
