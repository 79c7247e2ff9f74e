"""What several sub-commands share: loading ``--schema`` and building an ``Extractor``."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from ..exceptions import ConfigurationError


def import_source(source: str, option: str) -> ModuleType:
    """A module by dotted name, or a ``.py`` file by path (registered in ``sys.modules``,
    since pydantic resolves forward references through it). Import failures become a
    ``ConfigurationError`` that starts with ``option`` (e.g. ``--schema 'x:Y'``)."""
    try:
        if source.endswith(".py") or "/" in source or "\\" in source:
            path = Path(source)
            if not path.is_file():
                raise ConfigurationError(f"{option}: no file {path}.")
            unique = f"_fieldwise_user_{path.stem}_{abs(hash(str(path.resolve())))}"
            if unique in sys.modules:
                return sys.modules[unique]
            loaded = importlib.util.spec_from_file_location(unique, path)
            if loaded is None or loaded.loader is None:
                raise ConfigurationError(f"{option}: cannot import {path}.")
            module = importlib.util.module_from_spec(loaded)
            folder = str(path.resolve().parent)
            if folder not in sys.path:  # as `python file.py` would: its sibling modules import
                sys.path.insert(0, folder)
            sys.modules[unique] = module
            try:
                loaded.loader.exec_module(module)
            except BaseException:
                del sys.modules[unique]
                raise
            return module
        if "" not in sys.path:
            sys.path.insert(0, "")
        return importlib.import_module(source)
    except ConfigurationError:
        raise
    except Exception as exc:
        raise ConfigurationError(
            f"{option}: importing {source!r} failed: {type(exc).__name__}: {exc}"
        ) from exc


def load_target(spec: str) -> Any:
    """``pkg.mod:Class`` or ``path/to/file.py:Class`` → the class (or type alias)."""
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        raise ConfigurationError(
            f"--schema {spec!r}: write MODULE:CLASS (pkg.models:Invoice) or FILE.py:CLASS."
        )
    module = import_source(module_name, f"--schema {spec!r}")
    try:
        return getattr(module, attr)
    except AttributeError:
        names = [model.__name__ for model in defined_models(module)]
        defined = f" It defines: {', '.join(names)}." if names else ""
        raise ConfigurationError(
            f"--schema {spec!r}: {module_name!r} has no attribute {attr!r}.{defined}"
        ) from None


def defined_models(module: Any) -> list[type[Any]]:
    """The pydantic model classes a module defines (not those it imports), in order."""
    from pydantic import BaseModel

    return [
        value
        for name, value in vars(module).items()
        if isinstance(value, type)
        and issubclass(value, BaseModel)
        and value.__module__ == module.__name__
        and not name.startswith("_")
    ]


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):  # inf and nan would never time out, or break the sums
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds, not {text}")
    return value


def seconds_or_zero(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0, not {text}")
    return value


def seconds(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, not {text}")
    return value


def add_extractor_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--model", help="model id, or 'local' (default: see docs)")
    group.add_argument("--base-url", help="any OpenAI-compatible base URL")
    group.add_argument("--max-retries", type=int, default=2, help="re-asks on invalid output")
    group.add_argument("--temperature", type=float, default=0.0)
    group.add_argument("--seed", type=int, default=0)
    group.add_argument("--instructions", help="extra instructions for the model")
    group.add_argument(
        "--mode", choices=["json_schema", "json_object", "tools"], default="json_schema"
    )
    group.add_argument("--no-cache", action="store_true", help="neither read nor write cache")
    group.add_argument("--refresh", action="store_true", help="ignore cached answers")
    group.add_argument("--timeout", type=seconds, default=60.0, help="seconds per request")
    group.add_argument(
        "--max-tokens",
        type=at_least_one,
        help="the most tokens one answer may use (default: the endpoint's)",
    )


# Option types: a value out of range is a usage error (argparse: the message, exit 2)
# rather than a traceback from deep in the library once the command is half started.


def whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def at_least_one(text: str) -> int:
    value = whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, not {text}")
    return value


def make_extractor(args: argparse.Namespace, **options: Any) -> Any:
    """The extractor the common options describe; ``options``: a command's own."""
    from ..extractor import Extractor

    cache: Any = False if args.no_cache else ("refresh" if args.refresh else True)
    return Extractor(
        **options,
        model=args.model,
        base_url=args.base_url,
        max_retries=args.max_retries,
        temperature=args.temperature,
        seed=args.seed,
        instructions=args.instructions,
        mode=args.mode,
        cache=cache,
        timeout=args.timeout,
        max_tokens=args.max_tokens,
    )


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))
