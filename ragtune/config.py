"""One dataclass per job feeds the Python API, the CLI (`--help`) and YAML configs.

Fields carry `metadata={"help": ..., "positional": bool, "short": "-k"}`. On the command line,
`--config job.yaml` fills fields from a file; flags given on the command line win over the file;
unknown keys in the file are an error naming the valid ones.

    from dataclasses import dataclass, field

    import typer

    from ragtune.config import load_config, typer_command

    @dataclass
    class SearchConfig:
        index: str = field(default="", metadata={"help": "index directory", "positional": True})
        k: int = field(default=5, metadata={"help": "results", "short": "-k"})

    cfg = load_config(SearchConfig, None, k=10)    # Python: an optional YAML file, then overrides
    app = typer.Typer()
    app.command("search")(typer_command(SearchConfig, print))  # CLI: `search IDX -k 3 --config f`
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ragtune.errors import ConfigError

T = TypeVar("T")


def _fields(cls) -> list[dataclasses.Field]:
    return list(dataclasses.fields(cls))


def _base_type(tp: Any) -> tuple[Any, bool]:
    """(inner type, optional?) for `X | None`; list[...] stays as is."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return (args[0] if len(args) == 1 else tp), True
    return tp, False


def _check_type(cls, name: str, tp: Any, value: Any, source: str) -> Any:
    tp, optional = _base_type(tp)
    if value is None and optional:
        return None
    origin = typing.get_origin(tp)
    ok: bool
    if origin is list:
        if isinstance(value, str):  # "a,b" in YAML is accepted for list fields
            value = [v.strip() for v in value.split(",") if v.strip()]
        ok = isinstance(value, list | tuple)
        elem = (typing.get_args(tp) or (str,))[0]
        if ok and elem in (int, float, str):
            try:  # the command line hands list items over as strings: convert them
                value = [elem(v) for v in value]
            except (TypeError, ValueError):
                raise ConfigError(
                    f"{source}: field '{name}' of {cls.__name__} must be a list of "
                    f"{elem.__name__}, got {value!r}"
                ) from None
    elif tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is bool:
        ok = isinstance(value, bool)
    elif tp is str:
        ok = isinstance(value, str | int | float) and not isinstance(value, bool)
        value = str(value) if ok else value
    else:
        ok = True
    if not ok:
        tname = getattr(tp, "__name__", str(tp))
        raise ConfigError(
            f"{source}: field '{name}' of {cls.__name__} must be {tname}, got {value!r}"
        )
    return value


def read_yaml(path: str | Path) -> dict[str, Any]:
    import yaml

    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: not valid YAML ({getattr(e, 'problem', e)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must be a mapping of field: value")
    return data


def load_config(cls: type[T], path: str | Path | None = None, /, **overrides: Any) -> T:
    """Build `cls` from an optional YAML file, then `overrides` (which win)."""
    data = read_yaml(path) if path else {}
    names = {f.name: f for f in _fields(cls)}
    for src, values in ((str(path), data), ("arguments", overrides)):
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ConfigError(
                f"{src}: unknown key(s) {', '.join(unknown)} for {cls.__name__}; "
                f"valid keys: {', '.join(names)}"
            )
    merged = {**data, **overrides}
    hints = typing.get_type_hints(cls)
    kwargs = {
        k: _check_type(
            cls, k, hints[k], v, str(path) if k in data and k not in overrides else "argument"
        )
        for k, v in merged.items()
    }
    return cls(**kwargs)


def typer_command(cls: type[T], run: Callable[[T], Any]) -> Callable[..., Any]:
    """A function whose signature typer turns into a command with one option per field."""
    import typer

    hints = typing.get_type_hints(cls)
    params = [
        inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)
    ]
    for f in _fields(cls):
        meta = f.metadata
        default = f.default if f.default is not dataclasses.MISSING else None
        if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        tp = hints[f.name]
        help_ = meta.get("help", "")
        if meta.get("positional"):
            info = typer.Argument(None, help=help_, show_default=False)
            inner, _ = _base_type(tp)
            ann = inner | None
        else:
            decls = [meta.get("flag") or "--" + f.name.replace("_", "-")]
            if meta.get("short"):
                decls.append(meta["short"])
            if _base_type(tp)[0] is bool:
                decls = [f"--{f.name.replace('_', '-')}/--no-{f.name.replace('_', '-')}"]
            info = typer.Option(default, *decls, help=help_)
            ann = tp
            if typing.get_origin(_base_type(tp)[0]) is list:
                # click would reject "0,1,2" for list[int]: take strings, convert in load_config
                ann = list[str] | None
        params.append(
            inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=ann)
        )
    params.append(
        inspect.Parameter(
            "config",
            inspect.Parameter.KEYWORD_ONLY,
            default=typer.Option(None, "--config", help="YAML file of fields; flags win over it."),
            annotation=Path | None,
        )
    )

    fields_by_name = {f.name: f for f in _fields(cls)}

    def command(ctx, **kwargs):
        config_file = kwargs.pop("config")
        given = {}
        for name, value in kwargs.items():
            src = ctx.get_parameter_source(name)
            if isinstance(value, list | tuple) and not fields_by_name[name].metadata.get(
                "positional"
            ):
                value = [v.strip() for item in value for v in str(item).split(",") if v.strip()]
            # typer may vendor its own click: compare parameter sources by name.
            src_name = getattr(src, "name", "DEFAULT")
            if src_name == "COMMANDLINE" and value is not None:
                given[name] = value  # `--sweep ""` is an explicit empty list
            elif src_name not in ("DEFAULT", "COMMANDLINE") and value not in (None, [], ()):
                given[name] = value  # e.g. from an environment variable
        cfg = load_config(cls, config_file, **given)
        for f in _fields(cls):
            if f.metadata.get("required") and getattr(cfg, f.name) in (None, "", [], ()):
                raise ConfigError(
                    f"missing {f.name.upper()}: give it on the command line or in --config"
                )
        return run(cfg)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    # typer resolves type hints from __annotations__: give it real objects, not strings.
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = (run.__doc__ or cls.__doc__ or "").strip()
    return command
