"""Typed checks of plain data (JSON / YAML values) against the annotations of a constructor.

Both boundaries use it: `validation` (a composed config, before a run builds anything) and
`network_spec` (a model manifest, before a network is rebuilt from it). The annotations are the
schema: a value must be an instance of what the parameter declares (`int`, `float | None`,
`list[str]`, `Literal[...]`, ...), a key must be a parameter, and nothing is converted.

Written here rather than with a validation library: the values are plain data (never objects),
the check must follow constructors that forward `**kwargs` to their parents, and every failure
must be one line in the project's words; pydantic or typeguard would coerce, or report a union
mismatch over several lines.
"""

from __future__ import annotations

import collections.abc
import inspect
import math
import os
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from one4all.errors import UserError

# Integers beyond 64 bits overflow every consumer (torch seeds and shapes): refused as out of range.
INT_LIMIT = 2**63
_NOUNS = {bool: ("true or false", "booleans"), int: ("an integer", "integers"),
          float: ("a finite number", "finite numbers"),
          str: ("a string", "strings"), type(None): ("null", "nulls")}
_SEQUENCES = (list, tuple, collections.abc.Sequence, collections.abc.Iterable, collections.abc.Collection)
_MAPPINGS = (dict, collections.abc.Mapping)


@dataclass(frozen=True)
class Param:
    """One keyword parameter of a constructor: its type hint and whether it has a default."""

    name: str
    hint: Any
    required: bool


@dataclass(frozen=True)
class Signature:
    """The keyword parameters of a class (through `**kwargs` into its parents) or a function.

    `open`: the chain ends in `**kwargs` that go nowhere checkable, so unknown keys cannot be refused.
    """

    owner: str
    params: dict[str, Param]
    open: bool


def signature(target: Callable) -> Signature:
    """The keyword parameters `target` accepts, with their resolved type hints."""
    owner = f"{target.__module__}.{target.__qualname__}"
    if not inspect.isclass(target):
        params, open_ = _own_params(target)
        return Signature(owner, params, open_)
    params: dict[str, Param] = {}
    open_ = False
    for cls in target.__mro__:
        if cls is object or "__init__" not in vars(cls):
            continue
        own, open_ = _own_params(vars(cls)["__init__"], skip_self=True)
        for name, param in own.items():
            params.setdefault(name, param)
        if not open_:  # the chain stops at the first constructor without **kwargs
            break
    return Signature(owner, params, open_)


def _own_params(function: Callable, skip_self: bool = False) -> tuple[dict[str, Param], bool]:
    try:
        hints = typing.get_type_hints(function)
    except (NameError, TypeError):  # an annotation that needs names only a type checker sees
        hints = {}
    params, open_ = {}, False
    for i, (name, param) in enumerate(inspect.signature(function).parameters.items()):
        if skip_self and i == 0:
            continue
        if param.kind is param.VAR_KEYWORD:
            open_ = True
        elif param.kind is not param.VAR_POSITIONAL:
            params[name] = Param(name, hints.get(name, Any), param.default is inspect.Parameter.empty)
    return params, open_


def allows(hint: Any, value: Any) -> bool:
    """Whether plain `value` is an instance of the annotation `hint` (no conversion)."""
    if hint is Any or hint is object or isinstance(hint, typing.TypeVar | typing.ForwardRef | str):
        return True
    if hint is None or hint is type(None):
        return value is None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        return any(allows(arg, value) for arg in args)
    if origin is typing.Literal:
        return any(value == arg and type(value) is type(arg) for arg in args)
    if origin is typing.Annotated:
        return allows(args[0], value)
    if origin in _SEQUENCES:
        return _allows_sequence(origin, args, value)
    if origin in _MAPPINGS:
        return isinstance(value, dict) and (not args or all(
            allows(args[0], k) and allows(args[1], v) for k, v in value.items()))
    if origin is not None:  # Callable[...], type[...] and other forms plain data cannot be
        return False
    return _allows_class(hint, value)


def _allows_sequence(origin: Any, args: tuple, value: Any) -> bool:
    if not isinstance(value, list | tuple):
        return False
    if origin is tuple and args and args[-1] is not Ellipsis:
        return len(value) == len(args) and all(allows(a, v) for a, v in zip(args, value))
    return not args or all(allows(args[0], v) for v in value)


def _allows_class(hint: Any, value: Any) -> bool:
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool) and -INT_LIMIT <= value < INT_LIMIT
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if hint in (PurePath, os.PathLike) or (inspect.isclass(hint) and issubclass(hint, PurePath)):
        return isinstance(value, str)
    try:
        return isinstance(value, hint)
    except TypeError:  # a Protocol without runtime checks: nothing to hold plain data against
        return True


def describe(hint: Any, plural: bool = False) -> str:
    """What `hint` accepts, in words: 'an integer', 'null or a number', "one of 'a', 'b'"."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is None:
        hint = type(None)
    if hint in _NOUNS:
        return _NOUNS[hint][plural]
    if origin is typing.Union or origin is types.UnionType:
        plain = [a for a in args if a in _NOUNS or typing.get_origin(a) in (typing.Literal, *_SEQUENCES, *_MAPPINGS)]
        return " or ".join(dict.fromkeys(describe(a, plural) for a in (plain or args)))
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is typing.Annotated:
        return describe(args[0], plural)
    if origin in _SEQUENCES:
        inner = f" of {describe(args[0], plural=True)}" if args and args[-1] is not Ellipsis else ""
        return ("lists" if plural else "a list") + inner
    if origin in _MAPPINGS:
        inner = f" of {describe(args[1], plural=True)}" if args else ""
        return ("mappings" if plural else "a mapping") + inner
    name = hint.__name__ if inspect.isclass(hint) else str(hint)
    return f"{name} objects" if plural else f"a {name}"


def shown(value: Any, limit: int = 60) -> str:
    """`value` for a one-line message: its repr, shortened."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_value(key: str, value: Any, hint: Any, where: str = "") -> None:
    """Raise a one-line UserError unless `value` is an instance of `hint`."""
    if not allows(hint, value):
        suffix = f" ({where})" if where else ""
        raise UserError(f"{key}={shown(value)} is invalid: expected {describe(hint)}{suffix}")


def check_keys(prefix: str, keys: collections.abc.Iterable[str], sig: Signature) -> None:
    """Refuse keys that are not parameters of `sig` (unless it forwards unknown ones)."""
    if sig.open:
        return
    unknown = [k for k in keys if k not in sig.params]
    if unknown:
        known = ", ".join(sorted(sig.params))
        raise UserError(f"unknown key {prefix}{unknown[0]} for {sig.owner}; known keys: {known}")


# What constructors raise on values they cannot use; anything else is a bug and keeps its traceback.
CONSTRUCTOR_ERRORS = (ValueError, TypeError, KeyError, IndexError, RuntimeError, NotImplementedError,
                      AssertionError, ZeroDivisionError, OverflowError)


def first_line(err: BaseException) -> str:
    """An exception as one line: its first non-empty line, or its type's name."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def construct(target: Callable, where: str, values: dict[str, Any], **supplied: Any) -> Any:
    """`target(**values, **supplied)`, where a constructor's refusal of a value is a one-line UserError."""
    try:
        return target(**values, **supplied)
    except UserError:
        raise
    except CONSTRUCTOR_ERRORS as err:
        raise UserError(f"{where}: {first_line(err)}") from err


def check_settings(where: str, settings: collections.abc.Mapping[str, Any], sig: Signature,
                   supplied: tuple[str, ...] = ()) -> None:
    """The keys of `settings` against `sig`: none that the caller supplies, none unknown, no required one missing."""
    refused = [k for k in settings if k in supplied]
    if refused:
        raise UserError(f"{where}.{refused[0]} is set by one4all itself; remove it")
    check_keys(f"{where}.", settings, sig)
    missing = [p.name for p in sig.params.values() if p.required and p.name not in settings and p.name not in supplied]
    if missing:
        raise UserError(f"{where}.{missing[0]} is missing; {sig.owner} requires it")


def checked_object(target: type, where: str, values: Any) -> Any:
    """`target(**values)` for plain `values` (a mapping of settings), every key and type checked first."""
    if not isinstance(values, dict):
        raise UserError(f"{where} must be a mapping, got {shown(values)}")
    sig = signature(target)
    check_settings(where, values, sig)
    for key, value in values.items():
        check_value(f"{where}.{key}", value, sig.params[key].hint)
    return construct(target, where, values)
