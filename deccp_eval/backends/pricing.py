"""USD cost of a response from its token counts.

A small built-in table of list prices (USD per million tokens) for a handful of well-known
models, so a run against them reports cost with no setup. Prices change: a models file entry's
`prices: {input: X, output: Y}` (or BackendOptions.prices) overrides the table for that model
and adds models it lacks. Unknown models cost `None` (unknown), never 0.

Batch prices (OpenAI Batch API, Anthropic Message Batches): `batch_input` / `batch_output` in the
table or a models file's `prices`; where none is given, BATCH_DISCOUNT of the normal price (both
providers sell batch calls at 50%).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from deccp_eval.base.errors import UsageError, validation_problems

PRICES_AS_OF = "2025-10"


class Price(BaseModel):
    """USD per million tokens."""

    model_config = ConfigDict(extra="forbid")

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    batch_input: float | None = Field(default=None, ge=0)
    batch_output: float | None = Field(default=None, ge=0)


BATCH_DISCOUNT = 0.5

# Provider list prices (standard tier, no cache discounts) as of PRICES_AS_OF; batch prices are half.
BUILTIN_PRICES: dict[str, Price] = {
    name: Price(input=i, output=o, batch_input=i * BATCH_DISCOUNT, batch_output=o * BATCH_DISCOUNT)
    for name, (i, o) in {
        "gpt-4o": (2.50, 10.00),
        "gpt-4o-mini": (0.15, 0.60),
        "gpt-4.1": (2.00, 8.00),
        "gpt-4.1-mini": (0.40, 1.60),
        "gpt-4.1-nano": (0.10, 0.40),
        "deepseek-chat": (0.28, 0.42),
        "deepseek-reasoner": (0.28, 0.42),
        "claude-opus-4-1": (15.00, 75.00),
        "claude-sonnet-4-5": (3.00, 15.00),
        "claude-haiku-4-5": (1.00, 5.00),
    }.items()
}

# A dated snapshot or alias of a table entry costs the same: gpt-4o-mini-2024-07-18, claude-haiku-4-5-20251001.
_SNAPSHOT = re.compile(r"^-(\d{4}-\d{2}-\d{2}|\d{8}|latest)$")


def parse_prices(prices: dict[str, float] | None, where: str = "prices") -> Price | None:
    """Validate a `{input, output}` mapping from flags or a models file into a Price."""
    if prices is None:
        return None
    try:
        return Price.model_validate(prices)
    except ValidationError as exc:
        raise UsageError(
            f"{where}: expected {{input: USD per 1M tokens, output: USD per 1M tokens, optional "
            f"batch_input, batch_output}} ({validation_problems(exc, whole='prices')})"
        ) from None


def lookup(model: str, table: dict[str, Price] | None = None) -> Price | None:
    """Price of a model name; a provider prefix (`openai/gpt-4o` on OpenRouter) and a date suffix are ignored."""
    table = BUILTIN_PRICES if table is None else table
    name = model.rsplit("/", 1)[-1].lower()
    if name in table:
        return table[name]
    best = None
    for key in table:
        if name.startswith(key) and _SNAPSHOT.match(name[len(key) :]) and (best is None or len(key) > len(best)):
            best = key
    return table[best] if best else None


def price_for(model: str, override: dict[str, float] | None = None) -> Price | None:
    """The models file's price when given, else the built-in table's."""
    return parse_prices(override) or lookup(model)


def batch_price(price: Price | None) -> Price | None:
    """The price of the same call through a batch API."""
    if price is None:
        return None
    return Price(
        input=price.batch_input if price.batch_input is not None else price.input * BATCH_DISCOUNT,
        output=price.batch_output if price.batch_output is not None else price.output * BATCH_DISCOUNT,
    )


def cost(price: Price | None, tokens_in: int | None, tokens_out: int | None) -> float | None:
    """USD for one response, or None when the price or a token count is unknown."""
    if price is None or tokens_in is None or tokens_out is None:
        return None
    return (tokens_in * price.input + tokens_out * price.output) / 1_000_000
