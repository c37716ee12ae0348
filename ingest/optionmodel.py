"""The machinery shared by the option models: field declaration, environment defaults, one-line
validation errors and the argparse arguments generated from a model's fields.

An option is declared once, as a field of a pydantic dataclass built with `options_model`:

    batch_docs: PositiveInt = option(2048, "documents per batch (default 2048)")

Its type and constraints validate the TOML file, the command line and the Prefect flow parameters;
its description is the `--help` text and the Prefect form's; `flag=` overrides the flag name
(`--batch-docs` by default), `cli=False` leaves it out of the command line and `env=` names the
environment variable that supplies it at run time (`apply_environment`, the only place the
environment enters the options).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import types
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import (
    Annotated,
    Any,
    Literal,
    TypeVar,
    Union,
    cast,
    dataclass_transform,
    get_args,
    get_origin,
)

from pydantic import ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass as pydantic_dataclass
from pydantic.fields import FieldInfo
from pydantic_core import ArgsKwargs, PydanticUndefined

from ingest.errors import InputError

T = TypeVar("T")

# Constrained scalars. Strict: a bool, a float or a string is not an integer (TOML and JSON give
# real types; the command line converts its strings first).
PositiveInt = Annotated[int, Field(strict=True, ge=1)]
NonNegativeInt = Annotated[int, Field(strict=True, ge=0)]
PositiveFloat = Annotated[float, Field(strict=True, gt=0)]
StrictFloat = Annotated[float, Field(strict=True)]
StrictBool = Annotated[bool, Field(strict=True)]

_NO_VALUE = object()


def option(
    default: Any = PydanticUndefined,
    description: str = "",
    *,
    flag: str | None = None,
    flag_help: str | None = None,
    cli: bool = True,
    env: str | None = None,
    default_factory: Callable[[], Any] | None = None,
) -> Any:
    """Declare an option field.

    Args:
        default: The default value (omit for a required field or with `default_factory`).
        description: Help text of the flag, the TOML key and the Prefect form field.
        flag: Command-line flag; default `--` + the field name with dashes. For a bool whose
            default is True, the flag that turns it off (e.g. `--no-text`).
        flag_help: Help of the flag when it differs from the description (a `--no-...` switch).
        cli: False: not on the command line (e.g. `collections`, TOML / flow parameter only).
        env: Environment variable that supplies the value when none is given; for a list, its
            `os.pathsep`-separated entries are appended to the given ones (see `apply_environment`).
        default_factory: Called for the default instead of `default`.

    Returns:
        A pydantic `FieldInfo` (typed Any so that it can stand as the attribute's default).
    """
    extra: dict[str, Any] = {}
    if flag:
        extra["cli_flag"] = flag
    if flag_help:
        extra["cli_help"] = flag_help
    if not cli:
        extra["cli"] = False
    if env:
        extra["env"] = env
    if default_factory is not None:
        return Field(
            default_factory=default_factory, description=description, json_schema_extra=extra or None
        )
    return Field(default, description=description, json_schema_extra=extra or None)


@dataclass_transform(field_specifiers=(Field,))
def options_model(
    *, frozen: bool = False, kw_only: bool = False, cli: bool = True
) -> Callable[[type[T]], type[T]]:
    """Class decorator: a pydantic dataclass that rejects unknown keys and raises `OptionsError`.

    `cli=False`: a model not given on the command line (its errors name keys, not flags).

    The dataclass keeps `dataclasses.fields` / `dataclasses.replace` working (a `replace` validates
    again). A bad value raises `OptionsError` (an `InputError`) with one line per problem instead of
    pydantic's `ValidationError`, so the CLIs and the flows' retry policy treat it as the user's.
    """

    def wrap(cls: type[T]) -> type[T]:
        built = pydantic_dataclass(cls, frozen=frozen, kw_only=kw_only, config=ConfigDict(extra="forbid"))
        init = built.__init__

        @functools.wraps(init)
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            try:
                init(self, *args, **kwargs)
            except ValidationError as exc:
                raise OptionsError.from_validation(exc, built) from None

        built.__init__ = __init__  # type: ignore[method-assign]
        built.__options_cli__ = cli  # type: ignore[attr-defined]
        return cast(type[T], built)

    return wrap


# ---------------------------------------------------------------------------------------- fields


def model_fields(model: type) -> dict[str, FieldInfo]:
    """The fields of an option model, in declaration order (name -> pydantic FieldInfo)."""
    found: dict[str, FieldInfo] = getattr(model, "__pydantic_fields__", {})
    return dict(found)


def _extra(info: FieldInfo) -> dict[str, Any]:
    extra = info.json_schema_extra
    return extra if isinstance(extra, dict) else {}


def _strip_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _base(annotation: Any) -> tuple[Any, list[Any]]:
    """(type without Optional/Annotated, the Annotated metadata found on the way)."""
    metadata: list[Any] = []
    annotation = _strip_optional(annotation)
    while get_origin(annotation) is Annotated:
        annotation, *more = get_args(annotation)
        metadata += more
        annotation = _strip_optional(annotation)
    return annotation, metadata


def _item_type(annotation: Any) -> Any | None:
    """The item type of a list / tuple[X, ...] annotation, else None."""
    base, _ = _base(annotation)
    if get_origin(base) in (list, tuple):
        args = get_args(base)
        return args[0] if args else Any
    return None


def flag_of(name: str, info: FieldInfo) -> str | None:
    """The command-line flag of a field; None when it is not on the command line."""
    extra = _extra(info)
    if extra.get("cli") is False:
        return None
    flag = extra.get("cli_flag")
    return str(flag) if flag else "--" + name.replace("_", "-")


def env_of(info: FieldInfo) -> str | None:
    """The environment variable that supplies a field, if any."""
    env = _extra(info).get("env")
    return str(env) if env else None


# ----------------------------------------------------------------------------------- environment


def apply_environment(model: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """Fill the options the environment supplies: the one place environment variables enter options.

    A field declared with `env=` and not given (or given as None) takes the variable's value, else
    its default;
    a list field keeps the given entries and appends the variable's (`os.pathsep`-separated, as
    PATH), without duplicates. Called when the options are validated, i.e. in the process that
    runs them (a Prefect worker, not the machine that deployed the flow).

    Args:
        model: The option model (its fields name the variables).
        values: The given values (field name -> value).

    Returns:
        The values with the environment's added.
    """
    out = dict(values)
    for name, info in model_fields(model).items():
        var = env_of(info)
        raw = os.environ.get(var, "") if var else ""
        if var and not raw and name in out and out[name] is None:
            del out[name]  # given as None: the field's default, as when not given at all
        if not raw:
            continue
        if _item_type(info.annotation) is not None:
            given = out.get(name) or []
            if not isinstance(given, list | tuple):
                continue  # a bad value: validation reports it
            merged = list(given)
            for entry in raw.split(os.pathsep):
                if entry and Path(entry) not in {Path(str(g)) for g in merged}:
                    merged.append(Path(entry))
            out[name] = merged
        elif out.get(name) is None:
            out[name] = raw
    return out


def environment_validator(model: type, data: Any) -> Any:
    """Body of the models' `mode="before"` validator: `apply_environment` on keyword or dict input."""
    if isinstance(data, ArgsKwargs):
        return ArgsKwargs(data.args, apply_environment(model, data.kwargs or {}))
    if isinstance(data, dict):
        return apply_environment(model, data)
    return data


# ---------------------------------------------------------------------------------------- errors


@dataclasses.dataclass(frozen=True)
class Problem:
    """One bad value: where (`loc`, pydantic's path), the value given, and what is wrong."""

    loc: tuple[str | int, ...]
    value: Any
    text: str

    def line(self, where: str) -> str:
        """`<where>: <value> <text>`, or `<where>: <text>` when there is no value to show."""
        if self.value is _NO_VALUE:
            return f"{where} {self.text}" if where else self.text
        shown = f"{show_value(self.value)} {self.text}"
        return f"{where}: {shown}" if where else shown


class OptionsError(InputError):
    """Bad option values; the message names each option (CLI flag, else field path) and value."""

    def __init__(self, problems: list[Problem], model: type, message: str | None = None) -> None:
        self.problems = problems
        self.model = model
        super().__init__(message or self.describe(lambda loc: cli_name(model, loc)))

    @classmethod
    def from_validation(cls, exc: ValidationError, model: type) -> OptionsError:
        """Translate pydantic's errors into `Problem`s."""
        return cls([_problem(model, err) for err in exc.errors()], model)

    def describe(self, name: Callable[[tuple[str | int, ...]], str]) -> str:
        """The problems as one line, each option named by `name(loc)`."""
        return "; ".join(p.line(name(p.loc)) for p in self.problems)

    def renamed(self, name: Callable[[tuple[str | int, ...]], str]) -> OptionsError:
        """The same problems with the options named another way (TOML keys, flow parameters)."""
        return OptionsError(self.problems, self.model, self.describe(name))


def show_value(value: Any) -> str:
    """A value as the user wrote it in TOML / JSON: `true`, `"64"`, `64.5`, `[1, 2]`."""
    if isinstance(value, Path):
        return json.dumps(str(value))
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return repr(value)


def cli_name(model: type, loc: tuple[str | int, ...]) -> str:
    """An option named as on the command line (`--batch-docs`), else as a path (`collections[0].dim`)."""
    if loc and isinstance(loc[0], str) and getattr(model, "__options_cli__", False):
        info = model_fields(model).get(loc[0])
        flag = flag_of(loc[0], info) if info is not None else None
        if flag:
            return flag
    return path_name(loc)


def path_name(loc: tuple[str | int, ...]) -> str:
    """`collections[0].dim` from pydantic's location."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _field_at(model: type, loc: tuple[str | int, ...]) -> tuple[Any, list[Any]]:
    """(annotation, constraint metadata) of the value at `loc`, following nested models and lists."""
    current: type | None = model
    annotation: Any = None
    metadata: list[Any] = []
    for part in loc:
        if isinstance(part, str):
            info = model_fields(current).get(part) if current is not None else None
            if info is None:
                return None, []
            annotation, metadata = info.annotation, list(info.metadata)
        else:
            item = _item_type(annotation)
            if item is None:
                return None, []
            annotation, metadata = item, []
        base, more = _base(annotation)
        metadata += more
        nested = _item_type(base)
        inner, _ = _base(nested) if nested is not None else (base, [])
        current = inner if model_fields(inner) else None
    return annotation, metadata


def _bounds(metadata: Iterable[Any]) -> str:
    """` ≥ 1`, ` > 0 and < 1`, ... from annotated-types constraints (also inside FieldInfo)."""
    parts: list[str] = []
    for m in metadata:
        for inner in getattr(m, "metadata", [m]) if isinstance(m, FieldInfo) else [m]:
            for attr, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
                bound = getattr(inner, attr, None)
                if bound is not None and type(inner).__name__.lower() == attr:
                    parts.append(f"{sign} {_number(bound)}")
    return (" " + " and ".join(parts)) if parts else ""


def _number(value: Any) -> str:
    """`1` for 1.0, `0.5` for 0.5: a bound as a person writes it."""
    return f"{value:g}" if isinstance(value, float) else str(value)


_TYPE_TEXT = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "string": "a string",
    "list": "a list",
    "tuple": "a list",
    "path": "a path",
    "dict": "a table",
    "dataclass": "a table",
    "model": "a table",
}


def _problem(model: type, err: Any) -> Problem:
    """One pydantic error dict as a `Problem` (value + what is accepted)."""
    loc = tuple(err.get("loc", ()))
    names = list(model_fields(model))
    if loc and isinstance(loc[0], int) and loc[0] < len(names):
        loc = (names[loc[0]], *loc[1:])  # a positional argument: name its field
    kind = str(err.get("type", ""))
    ctx = err.get("ctx") or {}
    value = err.get("input", _NO_VALUE)
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        owner = _owner(model, loc)
        known = ", ".join(model_fields(owner)) if owner is not None else ""
        return Problem(loc, _NO_VALUE, "is not a known key" + (f" (known: {known})" if known else ""))
    if kind in ("missing", "missing_argument", "missing_keyword_only_argument"):
        return Problem(loc, _NO_VALUE, "is required")
    if kind == "literal_error":
        return Problem(loc, value, f"is not one of {ctx.get('expected', '')}")
    signs = {"greater_than_equal": ("≥", "ge"), "greater_than": (">", "gt")}
    signs |= {"less_than_equal": ("≤", "le"), "less_than": ("<", "lt")}
    if kind in signs:
        sign, key = signs[kind]
        return Problem(loc, value, f"is not accepted (must be {sign} {_number(ctx.get(key))})")
    if kind == "value_error":
        reason = str(ctx.get("error", err.get("msg", "")))
        return Problem(loc, value if loc else _NO_VALUE, f"is not accepted ({reason})" if loc else reason)
    for prefix, text in _TYPE_TEXT.items():
        if kind.startswith(prefix + "_"):
            _, metadata = _field_at(model, loc)
            bounds = _bounds(metadata) if prefix in ("int", "float") else ""
            return Problem(loc, value, f"is not {text}{bounds}")
    return Problem(loc, value, f"is not accepted ({err.get('msg', kind)})")


def _owner(model: type, loc: tuple[str | int, ...]) -> type | None:
    """The model that holds the last key of `loc` (for an unknown key: the model it was given to)."""
    current: type | None = model
    for part in loc[:-1]:
        if isinstance(part, str) and current is not None:
            info = model_fields(current).get(part)
            if info is None:
                return None
            item = _item_type(info.annotation)
            inner, _ = _base(item if item is not None else info.annotation)
            current = inner if model_fields(inner) else None
    return current


# ----------------------------------------------------------------------------------- command line


def options_parser(
    model: type, *, prog: str, description: str, epilog: str, target_help: str, config_help: str
) -> argparse.ArgumentParser:
    """A command's parser: its `target`, `--config` (a TOML file) and one flag per field of `model`
    (`add_option_arguments`); the caller adds its own switches."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("target", help=target_help)
    parser.add_argument("--config", type=Path, help=config_help)
    add_option_arguments(parser, model)
    return parser


def add_option_arguments(parser: argparse.ArgumentParser, model: type) -> None:
    """Add one argument per option field (in declaration order) to an argparse parser.

    Every argument defaults to None (= not given), keeps its text unconverted (so a bad value is
    reported by the model, naming the flag) and is read back by `options_from_args`. Lists are
    comma-separated (`--dims 1024,256`), except a list of paths, which repeats its flag
    (`--beir-dir a --beir-dir b`). A bool is a switch: `--recreate` sets True, `--no-text` (the
    flag of a field whose default is True) sets False.
    """
    for name, info in model_fields(model).items():
        flag = flag_of(name, info)
        if flag is None:
            continue
        help_text = str(_extra(info).get("cli_help") or info.description or "").replace("%", "%%")
        base, _ = _base(info.annotation)
        item = _item_type(base)
        if base is bool:
            parser.add_argument(
                flag, dest=name, action="store_const", const=info.default is not True, help=help_text
            )
        elif item is not None and _base(item)[0] is Path:
            parser.add_argument(flag, dest=name, action="append", metavar="DIR", help=help_text)
        elif item is not None:
            parser.add_argument(flag, dest=name, metavar="A,B,...", help=help_text)
        else:
            if get_origin(base) is Literal:
                metavar = "{" + ",".join(get_args(base)) + "}"
            else:
                metavar = flag.lstrip("-").replace("-", "_").upper()
            parser.add_argument(flag, dest=name, metavar=metavar, help=help_text)


def _convert(text: str, annotation: Any) -> Any:
    """A command-line string as the field's type; left as text when it does not convert, so the
    model's validation names the flag, the value and what is accepted."""
    base, _ = _base(annotation)
    try:
        if base is int:
            return int(text)
        if base is float:
            # `0` stays an int (the model takes it as a float) so that an error shows it as typed
            return int(text) if text.strip().lstrip("+-").isdigit() else float(text)
    except ValueError:
        return text
    if base is Path:
        return Path(text)
    return text


def options_from_args(args: argparse.Namespace, model: type) -> dict[str, Any]:
    """The options given on the command line (field name -> typed value); flags not given are absent."""
    out: dict[str, Any] = {}
    for name, info in model_fields(model).items():
        raw = getattr(args, name, None) if flag_of(name, info) else None
        if raw is None:
            continue
        item = _item_type(info.annotation)
        if isinstance(raw, bool):
            out[name] = raw
        elif isinstance(raw, list):
            out[name] = [_convert(r, item) for r in raw]
        elif item is not None:
            parts = [p.strip() for p in raw.split(",") if p.strip()]
            if parts:
                out[name] = [_convert(p, item) for p in parts]
        else:
            out[name] = _convert(raw, info.annotation)
    return out
