"""Which server to call, with which key, and what that kind of server is sent.

A *profile* is what differs between OpenAI-compatible servers: OpenRouter takes routing
(``provider``), an explicit ``reasoning`` switch and attribution headers; a generic server
(OpenAI, vLLM, llama.cpp, Ollama) gets only the standard fields. The profile is chosen
from the base URL and can be overridden.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlparse

from .exceptions import ConfigurationError
from .registry import BackendEndpoint

OPENROUTER_BASE_URL = "https://openrouter.ai/api/v1"
DEFAULT_MODEL = "qwen/qwen3.5-flash-02-23"
ProfileName = Literal["openrouter", "openai"]

_ATTRIBUTION_HEADERS = {
    "HTTP-Referer": "https://github.com/fieldwise/fieldwise",
    "X-OpenRouter-Title": "fieldwise",
    "X-Title": "fieldwise",
}

log = logging.getLogger("fieldwise.endpoints")


def profile_for(base_url: str, override: str | None = None) -> ProfileName:
    """``override`` if given, else ``openrouter`` for openrouter.ai hosts, else ``openai``."""
    if override is not None:
        if override not in ("openrouter", "openai"):
            raise ConfigurationError(
                f"profile={override!r} is not known; use 'openrouter' or 'openai'."
            )
        return override  # type: ignore[return-value]
    return "openrouter" if is_openrouter(base_url) else "openai"


def is_openrouter(url: str) -> bool:
    """Whether ``url`` is on an openrouter.ai host."""
    host = (urlparse(url).hostname or "").lower()
    return host == "openrouter.ai" or host.endswith(".openrouter.ai")


def profile_headers(profile: ProfileName) -> dict[str, str]:
    return dict(_ATTRIBUTION_HEADERS) if profile == "openrouter" else {}


def reasoning_field(reasoning: str | dict[str, Any] | bool | None) -> dict[str, Any]:
    """OpenRouter's ``reasoning`` object: off unless asked, since thinking during structured
    output is the main known failure (empty content, runaway calls)."""
    if reasoning is None or reasoning is False:
        return {"enabled": False}
    if reasoning is True:
        return {"enabled": True}
    if isinstance(reasoning, str):
        return {"effort": reasoning}
    return dict(reasoning)


def apply_profile(
    body: dict[str, Any],
    profile: ProfileName,
    *,
    reasoning: str | dict[str, Any] | bool | None,
    provider: dict[str, Any] | None,
) -> dict[str, Any]:
    """Add what this kind of server needs to a standard request ``body`` (in place)."""
    if profile == "openrouter":
        body["provider"] = {"require_parameters": True, **(provider or {})}
        body["reasoning"] = reasoning_field(reasoning)
    else:
        if provider:
            raise ConfigurationError(
                "provider= routing is an OpenRouter feature; this endpoint is a generic "
                "OpenAI-compatible server. Drop provider= or pass profile='openrouter'."
            )
        effort = _reasoning_effort(reasoning)
        if effort is not None:
            body["reasoning_effort"] = effort
    return body


def _reasoning_effort(reasoning: str | dict[str, Any] | bool | None) -> str | None:
    """What a generic OpenAI-compatible server takes of ``reasoning=``: an effort
    (``reasoning_effort``), nothing else; the rest is OpenRouter's and is refused, never
    silently dropped."""
    if reasoning is None or reasoning is False:
        return None
    if isinstance(reasoning, str):
        return reasoning
    if isinstance(reasoning, dict) and set(reasoning) == {"effort"}:
        return str(reasoning["effort"])
    raise ConfigurationError(
        f"reasoning={reasoning!r} is OpenRouter's reasoning setting; this endpoint is a "
        "generic OpenAI-compatible server, which takes an effort only: pass "
        "reasoning='low', 'medium' or 'high' (sent as reasoning_effort), or "
        "profile='openrouter' if the server is OpenRouter's."
    )


@dataclass(frozen=True)
class EndpointSettings:
    """Resolved model, server and key. ``api_key`` never appears in the repr."""

    model: str
    base_url: str
    profile: ProfileName
    api_key: str | None = field(default=None, repr=False)
    backend: str | None = None
    #: a backend's price for its model (``BackendEndpoint.price``)
    price: tuple[float, float] | None = None


def _key_for(profile: ProfileName, api_key: str | None) -> str | None:
    # Each key goes only to its own service: OPENROUTER_API_KEY to OpenRouter,
    # OPENAI_API_KEY to other OpenAI-compatible endpoints; never one to the other.
    if api_key is not None:
        return api_key
    if profile == "openrouter":
        return os.environ.get("OPENROUTER_API_KEY")
    return os.environ.get("OPENAI_API_KEY")


def split_backend_model(model: str) -> tuple[str, str] | None:
    """``"local"`` → ``("local", "")``, ``"local:/m.gguf"`` → ``("local", "/m.gguf")`` when
    a backend of that name is installed; else ``None`` (a plain model id)."""
    name, _, arg = model.partition(":")
    if "/" in name:  # "qwen/qwen3.5..." is a model id, never a backend prefix
        return None
    from .plugins import backends

    return (name, arg) if name in backends() else None


def _offline_backend() -> str | None:
    from .plugins import backends

    for backend in backends().values():
        try:
            if backend.available is not None and backend.available():
                return backend.name
        except Exception as exc:  # a broken backend is not the offline default
            log.warning(
                "the %r backend could not say whether it is available: %s", backend.name, exc
            )
    return None


def resolve_endpoint(
    model: str | None,
    base_url: str | None,
    api_key: str | None,
    profile: str | None = None,
) -> EndpointSettings:
    """Decide model, server and key.

    Order: explicit arguments; ``FIELDWISE_MODEL`` / ``FIELDWISE_BASE_URL``; OpenRouter with
    the default model when ``OPENROUTER_API_KEY`` is set; an installed offline backend
    (``local``), with a notice on stderr; else OpenRouter, which fails on the first call
    with a message explaining both options.
    """
    model = model or os.environ.get("FIELDWISE_MODEL") or None
    base_url = base_url or os.environ.get("FIELDWISE_BASE_URL") or None
    if model is not None and base_url is None:
        backend = split_backend_model(model)
        if backend is not None:
            return EndpointSettings(model=model, base_url="", profile="openai", backend=model)
    unset = model is None and base_url is None and api_key is None and profile is None
    if unset and not os.environ.get("OPENROUTER_API_KEY"):
        offline = _offline_backend()
        if offline is not None:
            _offline_notice(offline)
            return EndpointSettings(model=offline, base_url="", profile="openai", backend=offline)
    base_url = (base_url or OPENROUTER_BASE_URL).rstrip("/")
    chosen = profile_for(base_url, profile)
    return EndpointSettings(
        model=model or DEFAULT_MODEL,
        base_url=base_url,
        profile=chosen,
        api_key=_key_for(chosen, api_key),
    )


_noticed: set[str] = set()


def _offline_notice(offline: str) -> None:
    """Say once per process that the offline model was chosen, on the ``fieldwise.endpoints``
    logger: with no logging configured Python prints a warning to stderr, and an
    application that makes extractors often can lower or route it as any other log."""
    if offline in _noticed:
        return
    _noticed.add(offline)
    log.warning(
        "fieldwise: no OPENROUTER_API_KEY set; using the small offline model (%r), whose "
        "quality is limited. Set OPENROUTER_API_KEY, or pass model=/base_url=, to use a "
        "hosted model.",
        offline,
    )


def resolve_backend(settings: EndpointSettings) -> EndpointSettings:
    """Start/locate a plugin backend's server (lazily, on first request)."""
    if settings.backend is None:
        return settings
    from .plugins import backends

    name, _, arg = settings.backend.partition(":")
    found = backends().get(name)
    if found is None:
        raise ConfigurationError(f"model={settings.backend!r}: no backend {name!r} is installed.")
    endpoint: BackendEndpoint = found.resolve(arg)
    return EndpointSettings(
        model=endpoint.model,
        base_url=endpoint.base_url.rstrip("/"),
        profile=profile_for(endpoint.base_url, endpoint.profile),
        api_key=endpoint.api_key,
        backend=settings.backend,
        price=endpoint.price if endpoint.price is not None else found.price,
    )


def backend_price(settings: EndpointSettings) -> tuple[float, float] | None:
    """A backend's own price for its model (``Backend.price``), if it names one."""
    if settings.backend is None:
        return None
    from .plugins import backends

    found = backends().get(settings.backend.partition(":")[0])
    return found.price if found is not None else None


def require_key(settings: EndpointSettings) -> None:
    """Fail before any call when OpenRouter is the target and no key is known."""
    if settings.profile == "openrouter" and not settings.api_key:
        offline = _offline_backend()
        how = (
            f"or use the offline model installed here: --model {offline} on the command "
            f"line, model={offline!r} in code"
            if offline
            else "or run offline with the local model: `fieldwise local pull`, then "
            "--model local on the command line (model='local' in code)"
        )
        raise ConfigurationError(
            f"No API key for OpenRouter. Set OPENROUTER_API_KEY (or pass api_key=...), {how}. "
            "Any OpenAI-compatible server works too: --base-url / base_url=..."
        )


def endpoint_identity(settings: EndpointSettings) -> str:
    """What the cache key calls the endpoint: its URL, or for a backend its name plus what
    the backend says would answer (a backend's server gets a new port every run)."""
    if settings.backend is None:
        return settings.base_url
    from .plugins import backends

    name, _, arg = settings.backend.partition(":")
    found = backends().get(name)
    if found is None or found.identity is None:
        return settings.backend
    try:
        return f"{settings.backend}#{found.identity(arg)}"
    except Exception:  # an identity is a refinement of the key, never a reason to fail
        return settings.backend
