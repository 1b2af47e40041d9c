"""Reading configuration YAML and turning validation errors into one-line messages.

The half of :mod:`forexgrid.config` that talks to files and to pydantic's error records, so
that the settings models there stay readable.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from forexgrid._reading import read_limited
from forexgrid._suggest import close_match
from forexgrid.exceptions import ConfigError, PathError, quote_input

__all__ = ["convert_validation_error", "describe_error", "format_loc", "read_yaml", "short_repr"]

_REPR_LIMIT = 80
# A configuration file is a few KB; far beyond that it is not one (and /dev/zero never ends).
_MAX_CONFIG_BYTES = 10 << 20


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate mapping keys instead of keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, Hashable) and key in seen:
                first = seen[key].start_mark.line + 1
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {quote_input(key)} (first given on line {first})",
                    key_node.start_mark,
                )
            if isinstance(key, Hashable):
                seen[key] = key_node
        return super().construct_mapping(node, deep=deep)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        # A scalar the resolver took for an int, float or timestamp may still fail to convert
        # (2017-13-45, an int of 5000 digits); PyYAML lets the ValueError out unmarked.
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:
            if isinstance(exc, yaml.YAMLError):
                raise
            kind = node.tag.rsplit(":", 1)[-1]
            value = node.value if isinstance(node, yaml.ScalarNode) else ""
            digits = sum(c.isdigit() for c in value)
            if kind == "int" and digits > 4300:
                problem = f"an integer of {digits} digits (at most 4300 are read)"
            else:
                article = "an" if kind[:1] in "aeiou" else "a"
                problem = (
                    f"cannot read {quote_input(value)} as {article} {kind} ({exc}); quote it to "
                    "make it text"
                )
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark) from None


def short_repr(value: Any) -> str:
    """``value`` for a one-line message: tuples shown as the YAML lists they came from."""
    return quote_input(list(value) if isinstance(value, tuple) else value, limit=_REPR_LIMIT)


def format_loc(loc: tuple[Any, ...]) -> str:
    """A pydantic error location as a key path: ``grid.days_history[1]``."""
    out = ""
    for part in loc:
        if part == "[key]":
            continue  # pydantic's marker for "the key itself"; the key is already shown
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and part.isidentifier() and len(part) <= 60:
            out += f".{part}" if out else part
        else:
            out += f"[{quote_input(part, limit=60)}]"
    return out or "top level"


def _model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    model = root
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        ann = field.annotation if field is not None else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return None
        model = ann
    return model


_SIMPLE_PROBLEMS = {
    "model_type": "must be a mapping",
    "dict_type": "must be a mapping",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "finite_number": "must be a finite number",
    "string_too_short": "must not be empty",
    "invalid_key": "keys must be strings",
}
_BOUNDS = {
    "greater_than_equal": ("ge", ">="),
    "greater_than": ("gt", ">"),
    "less_than_equal": ("le", "<="),
    "less_than": ("lt", "<"),
}


def describe_error(error: Mapping[str, Any], root: type[BaseModel]) -> str:
    """One pydantic error as ``<problem>, got <value>`` (``root`` for did-you-mean keys)."""
    kind, ctx, loc = error["type"], error.get("ctx") or {}, error["loc"]
    if kind == "extra_forbidden":
        model = _model_at(root, loc[:-1])
        allowed = list(model.model_fields) if model is not None else []
        close = close_match(loc[-1], allowed)
        if close:
            return f"unknown key; did you mean {close!r}?"
        return f"unknown key (allowed keys: {', '.join(allowed)})"
    if kind == "forexgrid":
        problem = ctx["problem"]
    elif kind in _SIMPLE_PROBLEMS:
        problem = _SIMPLE_PROBLEMS[kind]
    elif kind in _BOUNDS:
        name, op = _BOUNDS[kind]
        bound = ctx[name]
        # 0.0 reads as "0" in a message; a pydantic float bound is no different for the user.
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        problem = f"must be {op} {bound}"
    elif kind == "value_error":
        problem = str(ctx.get("error", error["msg"]))
    else:
        problem = error["msg"][:1].lower() + error["msg"][1:]
    return f"{problem}, got {short_repr(error['input'])}"


def convert_validation_error(
    exc: ValidationError,
    label: str,
    labels: Mapping[tuple[str, ...], str],
    root: type[BaseModel],
) -> str:
    """The first pydantic error as ``<file>: <dotted.key[i]>: <problem>, got <value>``.

    ``labels`` names another source for some key paths (an environment variable);
    ``root`` is the settings model, for the did-you-mean of unknown keys.
    """
    errors = exc.errors(include_url=False)
    first = errors[0]
    source = labels.get(tuple(first["loc"]), label)
    message = f"{source}: {format_loc(first['loc'])}: {describe_error(first, root)}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    return message


def read_yaml(path: Path, label: str) -> Any:
    """The YAML document of ``path``, or a one-line ConfigError naming the file and line."""
    if not path.exists():
        raise ConfigError(f"{label}: config file not found")
    if path.is_dir():
        raise ConfigError(f"{label}: is a directory, expected a YAML config file")
    try:
        raw = read_limited(
            path,
            _MAX_CONFIG_BYTES,
            expected="a YAML config file",
            hint="a configuration is a few kilobytes",
        )
    except PathError as exc:
        raise ConfigError(str(exc)) from exc
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read the config file: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        bad = raw[exc.start : exc.end]
        raise ConfigError(f"{label}: line {line}: not valid UTF-8 text, got {bad!r}") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = exc.problem or exc.context or "unreadable"
        # The problem mark can be far from the cause (an unclosed bracket is reported at the
        # end of the file); the context says where the construct began.
        if exc.problem and exc.context and exc.context_mark is not None:
            problem += f" ({exc.context} on line {exc.context_mark.line + 1})"
        raise ConfigError(f"{label}: {where}invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{label}: invalid YAML: {exc}") from None
