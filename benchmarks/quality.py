"""Answer quality on the shipped gold set: fieldwise configurations vs a bare OpenAI-SDK call.

Runs every configuration on the same local model (SmolLM2-135M via fieldwise-local, or any
OpenAI-compatible endpoint given with --base-url/--model), in one run, and prints the
exact-object rate per schema and overall, plus schema-valid rate and mean attempts.

    python benchmarks/quality.py            # all configurations
    python benchmarks/quality.py --only defaults,bare
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

from schemas import ContactCard, Invoice, SimpleForm  # noqa: E402

from fieldwise import Extractor  # noqa: E402
from fieldwise.evaluation import EvalReport, evaluate, load_gold, score_fields  # noqa: E402

GOLD = {
    "form": (ROOT / "examples/gold/forms.jsonl", SimpleForm),
    "contact": (ROOT / "examples/gold/contacts.jsonl", ContactCard),
    "invoice": (ROOT / "examples/gold/invoices.jsonl", Invoice),
}

#: Every configuration, the bare call included, gets the same output cap: a 135M model
#: can otherwise write one string until the context is full (minutes per item).
MAX_TOKENS = 300

#: name → Extractor settings (on top of model/base_url); "bare" is the OpenAI SDK call.
CONFIGS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "no-reask": {"max_retries": 0},
    "no-enforcement": {"mode": "json_object"},
    "grounding": {"grounding": True},
    "samples=3": {"samples": 3},
    "few-shot": {"few_shot": True},
}

#: One hand-written example per schema for the few-shot configuration (not in the gold set).
EXAMPLES: dict[str, list[tuple[str, Any]]] = {
    "form": [
        (
            "Applicant: Carla Diaz, aged 41, from Seville",
            SimpleForm(name="Carla Diaz", age=41, city="Seville"),
        )
    ],
    "contact": [
        (
            "Write to Henrik Sorensen (Nordlys AS) at henrik@nordlys.example",
            ContactCard(
                name="Henrik Sorensen",
                email="henrik@nordlys.example",
                phone=None,
                company="Nordlys AS",
            ),
        )
    ],
    "invoice": [
        (
            "INVOICE A-77\nDate: 2023-05-02\nBill to: Blue Ltd\n2 x Pen at 1.50 USD\n"
            "Total: 3.00 USD",
            Invoice(
                number="A-77",
                date="2023-05-02",
                currency="USD",
                customer="Blue Ltd",
                lines=[{"description": "Pen", "quantity": 2, "unit_price": 1.5}],
                total=3.0,
            ),
        )
    ],
}


def endpoint(args: argparse.Namespace) -> tuple[str, str, str | None]:
    if args.base_url:  # the key as fieldwise would read it, for the bare SDK call too
        from fieldwise.endpoints import resolve_endpoint

        settings = resolve_endpoint(args.model, args.base_url, None)
        return settings.base_url, settings.model, settings.api_key
    import fieldwise_local

    found = fieldwise_local.resolve("")
    return found.base_url, found.model, found.api_key


def bare_openai(
    base_url: str, model: str, api_key: str | None, pairs: list[Any], target: type[BaseModel]
) -> EvalReport:
    """``client.chat.completions.parse`` with the same model, schema and temperature."""
    from openai import OpenAI

    client = OpenAI(base_url=base_url, api_key=api_key or "none", max_retries=2)
    report = EvalReport(n=len(pairs))
    totals: dict[str, list[float]] = {}
    exact = valid = tokens = 0
    for text, expected in pairs:
        got = None
        try:
            completion = client.chat.completions.parse(
                model=model,
                messages=[
                    {"role": "system", "content": "Extract the structured data."},
                    {"role": "user", "content": text},
                ],
                response_format=target,
                temperature=0.0,
                seed=0,
                max_tokens=MAX_TOKENS,
            )
            tokens += completion.usage.total_tokens if completion.usage else 0
            parsed = completion.choices[0].message.parsed
            if parsed is not None:
                valid += 1
                got = parsed.model_dump(mode="json")
        except Exception as exc:  # the bare call's failures count as failures
            report.failures.append({"error": f"{type(exc).__name__}: {str(exc)[:200]}"})
        scores = score_fields(expected, got)
        for path, score in scores.items():
            totals.setdefault(path, []).append(score)
        if got is not None and all(s == 1.0 for s in scores.values()):
            exact += 1
    n = max(len(pairs), 1)
    report.exact_object, report.schema_valid, report.attempts = exact / n, valid / n, 1.0
    report.fields = {p: sum(v) / len(v) for p, v in totals.items()}
    report.tokens = tokens
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url")
    parser.add_argument("--model", default="local-model")
    parser.add_argument("--only", help="comma-separated configuration names (and/or 'bare')")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    base_url, model, api_key = endpoint(args)
    names = ["bare", *CONFIGS]
    if args.only:
        names = [n for n in names if n in args.only.split(",")]
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        started = time.monotonic()
        per_schema: dict[str, EvalReport] = {}
        for key, (path, target) in GOLD.items():
            pairs = list(load_gold(path))
            if name == "bare":
                per_schema[key] = bare_openai(base_url, model, api_key, pairs, target)
                continue
            settings = {"cache": False, "max_tokens": MAX_TOKENS, **CONFIGS[name]}
            options = {"examples": EXAMPLES[key]} if settings.pop("few_shot", False) else {}
            with Extractor(model=model, base_url=base_url, api_key=api_key, **settings) as ex:
                per_schema[key] = evaluate(pairs, target, ex, concurrency=1, **options)
        n = sum(r.n for r in per_schema.values())
        results[name] = {
            "exact_object": sum(r.exact_object * r.n for r in per_schema.values()) / n,
            "schema_valid": sum(r.schema_valid * r.n for r in per_schema.values()) / n,
            "attempts": sum(r.attempts * r.n for r in per_schema.values()) / n,
            "tokens": sum(r.tokens for r in per_schema.values()),
            "by_schema": {k: round(r.exact_object, 3) for k, r in per_schema.items()},
            "seconds": round(time.monotonic() - started, 1),
        }
        print(f"{name:16} {json.dumps(results[name])}", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"\n{'config':16} {'exact':>7} {'valid':>7} {'att.':>5}  form contact invoice")
        for name, r in results.items():
            s = r["by_schema"]
            print(
                f"{name:16} {r['exact_object']:7.1%} {r['schema_valid']:7.1%} "
                f"{r['attempts']:5.2f}  {s['form']:.2f} {s['contact']:.2f} {s['invoice']:.2f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
