"""fieldwise: fill pydantic models from text, documents and tables with a language model.

    from fieldwise import extract
    invoice = extract(text, Invoice)

The names below are the whole public API; they are imported lazily so that
``import fieldwise`` (and the command line) starts fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "extract": "api",
    "aextract": "api",
    "run": "api",
    "arun": "api",
    "default_extractor": "api",
    "Extractor": "extractor",
    "evaluate": "evaluation",
    "EvalReport": "evaluation",
    "compile_schema": "schema",
    "CompiledSchema": "schema",
    "Result": "result",
    "Usage": "result",
    "Document": "document",
    "Batch": "sync_batch",
    "AsyncBatch": "batch",
    "BatchItem": "batch",
    "BatchSummary": "batch",
    "BudgetExceededError": "exceptions",
    "hookimpl": "hookspecs",
    "DocumentLoader": "registry",
    "TableAdapter": "registry",
    "Backend": "registry",
    "BackendEndpoint": "registry",
    "FieldwiseError": "exceptions",
    "ConfigurationError": "exceptions",
    "SchemaError": "exceptions",
    "UnsupportedInputError": "exceptions",
    "PluginError": "exceptions",
    "APIError": "exceptions",
    "BadRequestError": "exceptions",
    "ContextLengthError": "exceptions",
    "AuthenticationError": "exceptions",
    "InsufficientCreditsError": "exceptions",
    "ModerationError": "exceptions",
    "RateLimitError": "exceptions",
    "ProviderError": "exceptions",
    "APIConnectionError": "exceptions",
    "APITimeoutError": "exceptions",
    "OutputError": "exceptions",
    "TruncatedOutputError": "exceptions",
    "RefusalError": "exceptions",
    "EmptyOutputError": "exceptions",
    "ExtractionError": "exceptions",
}

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AsyncBatch",
    "AuthenticationError",
    "Backend",
    "BackendEndpoint",
    "BadRequestError",
    "Batch",
    "BatchItem",
    "BatchSummary",
    "BudgetExceededError",
    "CompiledSchema",
    "ConfigurationError",
    "ContextLengthError",
    "Document",
    "DocumentLoader",
    "EmptyOutputError",
    "EvalReport",
    "ExtractionError",
    "Extractor",
    "FieldwiseError",
    "InsufficientCreditsError",
    "ModerationError",
    "OutputError",
    "PluginError",
    "ProviderError",
    "RateLimitError",
    "RefusalError",
    "Result",
    "SchemaError",
    "TableAdapter",
    "TruncatedOutputError",
    "UnsupportedInputError",
    "Usage",
    "aextract",
    "arun",
    "compile_schema",
    "default_extractor",
    "evaluate",
    "extract",
    "hookimpl",
    "run",
]

if TYPE_CHECKING:
    from .api import aextract, arun, default_extractor, extract, run
    from .batch import AsyncBatch, BatchItem, BatchSummary
    from .document import Document
    from .evaluation import EvalReport, evaluate
    from .exceptions import (
        APIConnectionError,
        APIError,
        APITimeoutError,
        AuthenticationError,
        BadRequestError,
        BudgetExceededError,
        ConfigurationError,
        ContextLengthError,
        EmptyOutputError,
        ExtractionError,
        FieldwiseError,
        InsufficientCreditsError,
        ModerationError,
        OutputError,
        PluginError,
        ProviderError,
        RateLimitError,
        RefusalError,
        SchemaError,
        TruncatedOutputError,
        UnsupportedInputError,
    )
    from .extractor import Extractor
    from .hookspecs import hookimpl
    from .registry import Backend, BackendEndpoint, DocumentLoader, TableAdapter
    from .result import Result, Usage
    from .schema import CompiledSchema, compile_schema
    from .sync_batch import Batch


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fieldwise' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
