"""Real chat completions against the embedded server and the real SmolLM2-135M model.

Plain httpx, as any OpenAI-compatible client would call it. The questions are the
simple ones this model gets right (see the project's local-model notes).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import fieldwise_local
import httpx
import jsonschema
import pytest

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "city": {"type": "string"},
    },
    "required": ["name", "age", "city"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def client(server: fieldwise_local.LocalServer) -> Iterator[httpx.Client]:
    endpoint = server.endpoint
    with httpx.Client(
        base_url=endpoint.base_url,
        headers={"Authorization": f"Bearer {endpoint.api_key}"},
        timeout=120,
        trust_env=False,
    ) as http:
        yield http


def _ask(client: httpx.Client, model: str, text: str, **extra: Any) -> dict[str, Any]:
    body = {
        "model": model,
        "messages": [
            {"role": "system", "content": "Extract the person as JSON."},
            {"role": "user", "content": text},
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "Person", "strict": True, "schema": PERSON},
        },
        "temperature": 0,
        "seed": 0,
        "max_tokens": 64,
        **extra,
    }
    response = client.post("/chat/completions", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_json_schema_answer_is_valid(
    client: httpx.Client, server: fieldwise_local.LocalServer
) -> None:
    answer = _ask(client, server.model, "Maria Lopez is 34 years old and lives in Madrid.")
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "stop"
    value = json.loads(choice["message"]["content"])
    jsonschema.validate(value, PERSON)
    assert value == {"name": "Maria Lopez", "age": 34, "city": "Madrid"}
    usage = answer["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert answer["model"] == server.model


def test_temperature_zero_with_a_seed_is_reproducible(
    client: httpx.Client, server: fieldwise_local.LocalServer
) -> None:
    text = "Our new volunteer, Tom Becker (27), commutes from Leipzig."
    first = _ask(client, server.model, text)["choices"][0]["message"]["content"]
    second = _ask(client, server.model, text)["choices"][0]["message"]["content"]
    assert first == second
    jsonschema.validate(json.loads(first), PERSON)


def test_max_tokens_is_honoured(client: httpx.Client, server: fieldwise_local.LocalServer) -> None:
    answer = _ask(client, server.model, "Ann Lee, 51, Oslo.", max_tokens=3)
    assert answer["choices"][0]["finish_reason"] == "length"
    assert answer["usage"]["completion_tokens"] == 3
