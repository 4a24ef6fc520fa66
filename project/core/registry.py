"""One registry type for every pluggable family (poolers, schedules, optimizers, data sets, file readers)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence
from typing import Generic, TypeVar

from project.core.errors import ConfigError

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


def checked_options(
    entry: Callable | Sequence[Callable], options: dict | None, key: str, skip: Iterable[str] = ()
) -> dict:
    """`options` checked against `entry`'s typed signature (minus the `skip` parameters the code passes itself):
    an unknown name or a value of the wrong type is a ConfigError naming `key`. Returns the options unchanged.

    `entry` may be several callables whose options together are the accepted ones (a wrapper and what it wraps;
    where both name an option, the first one's parameter counts).
    jsonargparse does the checking, the same way it checks every other option of the command line and YAML.
    """
    from jsonargparse import ArgumentError, ArgumentParser

    options = dict(options or {})
    parser = ArgumentParser(exit_on_error=False)
    taken = set(skip)
    for source in _sources(entry):
        adder = parser.add_class_arguments if inspect.isclass(source) else parser.add_function_arguments
        adder(source, skip=set(taken), fail_untyped=False)
        taken |= set(inspect.signature(source).parameters)
    try:
        parser.parse_object(options)
    except ArgumentError as error:
        raise ConfigError(f"{key}: {' '.join(str(error).split())} (options: {options_summary(entry, skip)})") from None
    return options


def _sources(entry: Callable | Sequence[Callable]) -> Sequence[Callable]:
    return entry if isinstance(entry, list | tuple) else (entry,)


def options_summary(entry: Callable | Sequence[Callable], skip: Iterable[str] = ()) -> str:
    """`name=default, ...` of `entry`'s own options, for error messages."""
    skipped = set(skip) | {"self"}
    parameters = {}  # the first source's parameter where several name one
    for source in _sources(entry):
        for parameter in inspect.signature(source).parameters.values():
            if parameter.name not in skipped and parameter.kind not in (
                parameter.VAR_POSITIONAL,
                parameter.VAR_KEYWORD,
            ):
                parameters.setdefault(parameter.name, parameter)
    parameters = list(parameters.values())
    return ", ".join(
        f"{parameter.name}={parameter.default!r}" if parameter.default is not parameter.empty else parameter.name
        for parameter in parameters
    )
