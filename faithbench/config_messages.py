"""The messages of a suite's schema errors (pydantic's), one line each: the key path, what was
expected, and for an unknown key the accepted key closest to it (a typo).
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import types
import typing
from typing import Any, Callable

from pydantic import BaseModel

__all__ = ["allowed_keys", "unknown_key", "validation_message"]


def validation_message(errors: list[dict[str, Any]], loc_of: Callable[[tuple[Any, ...]], str],
                       schema: Any = None) -> str:
    """``key: message`` for pydantic's errors of a suite (``loc_of``: an error's key path): an unknown
    top-level key first ('metric:' is why 'metrics' is missing); a value that fits no branch of a
    union lists every branch ("'auto' or 'none', or a valid dictionary or instance of ..."), unless
    the mapping branch failed inside (``preprocess: {mean: [x]}``): then that error, with its key."""
    err = next((e for e in errors if e["type"] == "extra_forbidden" and len(e["loc"]) == 1), errors[0])
    if err["type"] == "literal_error":  # a mapping given to a union of names and a mapping: its own error, if any
        key = loc_of(tuple(err["loc"]))
        err = next((e for e in errors if loc_of(tuple(e["loc"])).startswith((key + ".", key + "["))), err)
    loc, msg = loc_of(tuple(err["loc"])), err["msg"]
    if err["type"] == "extra_forbidden":
        msg = unknown_key(err, errors, schema)
    elif err["type"] == "missing":
        msg = "required key is missing"
    elif err["type"] == "value_error":  # a validator's own ValueError: its message, without pydantic's prefix
        msg = msg.removeprefix("Value error, ")
    elif err["type"] == "string_type" and isinstance(err.get("input"), (bool, int, float, dt.date)):  # alias: 12
        value = err["input"]  # a fuzzing review: name: 2024-01-01 said only "Input should be a valid string"
        msg = (f"expected a string, got {_got(value)}: YAML reads an unquoted number, date, true or false as one; "
               "quote it as you wrote it")  # not '{value}': YAML read 0x1F as 31 and 1_000 as 1000 (a diff review)
    else:
        here = [err] + [e for e in errors if e is not err and loc_of(tuple(e["loc"])) == loc]
        msg = ", or ".join([_plain(msg)] + [_plain(e["msg"]).removeprefix("Input should be ") for e in here[1:]])
        if any(e["type"] in ("dict_type", "model_type") for e in here) and "input" in err:  # say what came
            msg += f", got {_got(err['input'])}"  # a fuzzing review: params: null said only "a valid dictionary"
        if loc.endswith("target") and err["type"] == "literal_error":  # a discriminated union: one branch tried
            msg += ", or a mapping {classes: [...]}"
    return f"{loc}: {msg}"


def _plain(msg: str) -> str:
    """pydantic's message without the internal class it names ("or instance of PluginSpec")."""
    return re.sub(r" or instance of \w+", "", msg)


def _got(value: Any) -> str:
    """What a key held, for a message: ``null``, ``list [1, 2]``, ``str 'x'``."""
    return "null" if value is None else f"{type(value).__name__} {value!r}"


def unknown_key(err: dict[str, Any], errors: list[dict[str, Any]], schema: Any = None) -> str:
    """The message of a schema error ``extra_forbidden``: ``unknown key 'metric'``, with ``; did you
    mean 'metrics'?`` when a required key the same mapping lacks is close to it (a typo), else a key
    the mapping accepts (``schema``: the pydantic model of the whole document; a review: the typos of
    optional keys, ``sample`` or ``reciepe``, got no suggestion)."""
    key, parent = str(err["loc"][-1]), tuple(err["loc"][:-1])
    owner = next((name for name in (allowed_keys(schema, parent) if schema is not None else [])
                  if key in allowed_keys(schema, (*parent, name))), None)
    if owner:  # a fuzzing review: a model entry's epochs: 1 got "did you mean 'preprocess'?"
        return f"unknown key {key!r}; it belongs under {owner!r}: write {owner}: {{{key}: ...}}"
    missing = [str(e["loc"][-1]) for e in errors if e["type"] == "missing" and tuple(e["loc"][:-1]) == parent]
    close = difflib.get_close_matches(key, missing, n=1) or difflib.get_close_matches(
        key.lower(), allowed_keys(schema, parent) if schema is not None else [], n=1)
    return f"unknown key {key!r}" + (f"; did you mean {close[0]!r}?" if close else "")


def allowed_keys(schema: Any, loc: tuple[Any, ...]) -> list[str]:
    """The keys the mapping at ``loc`` (a pydantic error's path) accepts in the model ``schema``,
    following fields, list items and the model branches of unions; a part that names a union branch
    (``PreprocessSpec``, ``literal[...]``) is no key and is passed over."""
    def members(hint: Any) -> list[Any]:  # Optional / Union / Annotated unwrapped
        if typing.get_origin(hint) in (typing.Union, types.UnionType):
            return [m for arg in typing.get_args(hint) for m in members(arg)]
        return members(typing.get_args(hint)[0]) if typing.get_origin(hint) is typing.Annotated else [hint]

    def models(hints: list[Any]) -> list[Any]:
        return [m for h in hints for m in members(h) if isinstance(m, type) and issubclass(m, BaseModel)]

    hints = [schema]
    for part in loc:
        if isinstance(part, int):
            found = [typing.get_args(m)[0] for h in hints for m in members(h)
                     if typing.get_origin(m) in (list, tuple) and typing.get_args(m)]
        else:
            found = [m.model_fields[part].annotation for m in models(hints) if part in m.model_fields]
        hints = found or hints
    return [field.alias or name for m in models(hints) for name, field in m.model_fields.items()]
