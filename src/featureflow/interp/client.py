"""A chat-completions client for any OpenAI-compatible endpoint, with the cost controls the
paper's analysis lacked: an on-disk cache, a budget cap checked before every request, retries with
backoff, and no secret anywhere on disk.

- Cache: one JSON file per request under `cache_dir`, keyed by the SHA-256 of (endpoint, model,
  messages, sampling parameters). A cached reply costs nothing and sends nothing.
- Budget: before a request is sent, its worst case (estimated prompt tokens plus `max_tokens` of
  output, at the configured prices) is added to what was spent; if that would pass the cap the
  request is refused with `BudgetExceeded`, nothing is sent, and so is every later request. Spending uses the usage the server
  reports (or the estimate when it reports none).
- Retries: 429, 5xx, timeouts, connection errors and unreadable bodies are retried `max_retries` times, waiting
  `backoff_s * 2**attempt` seconds (at most 60); other errors fail at once.
- Prices: a request to an endpoint that is not loopback costs money, so its model must have a
  price in `interp.prices`; without one the run stops before the first request (`require_price`).
  Loopback endpoints (127.0.0.1, localhost, ::1: a local vLLM, llama.cpp or Ollama) are free.
- The API key is read from the environment variable named in the config and only handed to the
  `openai` client; error messages are scrubbed of it before they are stored or raised.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from featureflow.config import ConfigError
from featureflow.settings import InterpCost, InterpSettings

# Hosts taken as this machine. Only these: any other address (127.0.0.2 included) is treated as a
# paid remote endpoint, which is the safe side of the line.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class BudgetExceeded(RuntimeError):
    """The next request could pass the budget cap; nothing was sent."""


class RequestFailed(RuntimeError):
    """The endpoint did not answer usefully after the allowed retries (message scrubbed of the key)."""


def estimate_tokens(text: str, chars_per_token: float) -> int:
    """Tokens of `text` by a characters-per-token ratio (no tokenizer of the remote model is at hand)."""
    return int(len(text) / chars_per_token) + 1


def is_loopback(base_url: str | None) -> bool:
    """Whether `base_url` is a server on this machine (None: the default OpenAI endpoint, remote)."""
    return bool(base_url) and urlsplit(base_url).hostname in LOOPBACK_HOSTS


def price_problem(s: InterpSettings | InterpCost) -> str | None:
    """Why requests of these settings cannot be priced (a remote endpoint, a model without a price), or None."""
    if is_loopback(s.base_url) or s.model in s.prices:
        return None
    return (f"config key 'interp.prices.{s.model}' is missing: {s.base_url or 'the default OpenAI endpoint'} is not "
            f"loopback, so its requests cost money; add interp.prices.{s.model}: {{input: ..., output: ...}} "
            "(USD per million tokens, from the provider's price list)")


def require_price(s: InterpSettings | InterpCost) -> None:
    """Stop (ConfigError, one line) when a request of these settings could not be priced."""
    problem = price_problem(s)
    if problem:
        raise ConfigError(problem)


def price_of(prices: dict[str, dict[str, float]], model: str, prompt_tokens: float, completion_tokens: float) -> float:
    """USD for one request at the table's prices per million tokens (`input`, `output`).

    A model without a price costs 0: only loopback endpoints get that far (`require_price`)."""
    p = prices.get(model)
    if p is None:
        return 0.0
    return (prompt_tokens * p["input"] + completion_tokens * p["output"]) / 1e6


@dataclass
class Ledger:
    """What was spent and sent, shared by the threads of one run."""

    budget_usd: float
    spent_usd: float = 0.0
    requests_sent: int = 0
    cache_hits: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    exhausted: bool = False

    def reserve(self, worst_usd: float) -> None:
        """Count `worst_usd` as spent, or refuse (and every request after it: the run stops at the cap)."""
        with self.lock:
            if self.exhausted or self.spent_usd + worst_usd > self.budget_usd + 1e-12:
                self.exhausted = True
                raise BudgetExceeded(f"budget {self.budget_usd:.4f} USD reached: spent {self.spent_usd:.4f}, "
                                     f"next request up to {worst_usd:.4f}")
            self.spent_usd += worst_usd

    def settle(self, reserved_usd: float, actual_usd: float) -> None:
        with self.lock:
            self.spent_usd += actual_usd - reserved_usd
            self.requests_sent += 1


class ChatClient:
    """Cached, budgeted, retrying chat completions (settings: the config's `interp` block)."""

    def __init__(self, settings: InterpSettings, cache_dir: str | Path, ledger: Ledger):
        self.s = settings
        require_price(settings)
        self.ledger = ledger
        self._key = os.environ.get(settings.api_key_env, "")
        if not self._key:
            if not is_loopback(settings.base_url):
                raise ConfigError(f"config key 'interp.api_key_env': environment variable {settings.api_key_env} is not set "
                                  f"(needed for {settings.base_url or 'the default OpenAI endpoint'})")
            self._key = "no-key"  # local servers (vLLM, llama.cpp, Ollama) take any key
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._client = None

    def _openai(self) -> Any:
        if self._client is None:
            from openai import OpenAI

            self._client = OpenAI(base_url=self.s.base_url, api_key=self._key, max_retries=0, timeout=self.s.timeout_s)
        return self._client

    def scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key and self._key != "no-key" else text

    def request_key(self, messages: list[dict[str, str]], max_tokens: int, json_mode: bool) -> str:
        body = {"endpoint": self.s.base_url, "model": self.s.model, "messages": messages, "max_tokens": max_tokens,
                "temperature": self.s.temperature, "json_mode": json_mode}
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()

    def complete(self, messages: list[dict[str, str]], max_tokens: int, json_mode: bool = False) -> dict[str, Any]:
        """{"text", "prompt_tokens", "completion_tokens", "cost_usd", "cached"} for one chat request."""
        key = self.request_key(messages, max_tokens, json_mode)
        path = self.cache_dir / f"{key}.json"
        if path.exists():
            with self.ledger.lock:
                self.ledger.cache_hits += 1
            return {**json.loads(path.read_text())["reply"], "cost_usd": 0.0, "cached": True}
        prompt_est = sum(estimate_tokens(m["content"], self.s.chars_per_token) for m in messages)
        worst = price_of(self.s.prices, self.s.model, prompt_est, max_tokens)
        self.ledger.reserve(worst)
        try:
            reply = self._send(messages, max_tokens, json_mode)
        except BaseException:
            self.ledger.settle(worst, 0.0)
            raise
        p_tok = reply["prompt_tokens"] if reply["prompt_tokens"] is not None else prompt_est
        c_tok = reply["completion_tokens"] if reply["completion_tokens"] is not None else estimate_tokens(reply["text"], self.s.chars_per_token)
        cost = price_of(self.s.prices, self.s.model, p_tok, c_tok)
        self.ledger.settle(worst, cost)
        record = {"request": {"endpoint": self.s.base_url, "model": self.s.model, "messages": messages,
                              "max_tokens": max_tokens, "json_mode": json_mode}, "reply": reply}
        # a temp name of this process and thread: two jobs (or two requests in flight) may ask the same prompt
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(self.scrub(json.dumps(record)))
        os.replace(tmp, path)
        return {**reply, "cost_usd": cost, "cached": False}

    def _send(self, messages: list[dict[str, str]], max_tokens: int, json_mode: bool) -> dict[str, Any]:
        import openai

        # ValueError: a body that is not JSON (an overloaded server or proxy); worth another try too
        retryable = (openai.RateLimitError, openai.InternalServerError, openai.APITimeoutError, openai.APIConnectionError, ValueError)
        extra = {"response_format": {"type": "json_object"}} if json_mode and self.s.json_mode else {}
        for attempt in range(self.s.max_retries + 1):
            try:
                r = self._openai().chat.completions.create(model=self.s.model, messages=messages, max_tokens=max_tokens,
                                                           temperature=self.s.temperature, **extra)
                usage = r.usage
                return {"text": r.choices[0].message.content or "",
                        "prompt_tokens": getattr(usage, "prompt_tokens", None) if usage else None,
                        "completion_tokens": getattr(usage, "completion_tokens", None) if usage else None}
            except retryable as err:
                status = getattr(err, "status_code", None)
                if attempt == self.s.max_retries:
                    raise RequestFailed(self.scrub(f"{type(err).__name__}{f' {status}' if status else ''} after "
                                                   f"{attempt + 1} attempts")) from None
                time.sleep(min(60.0, self.s.backoff_s * 2 ** attempt))
            except openai.APIError as err:
                raise RequestFailed(self.scrub(f"{type(err).__name__}: {err}")) from None
        raise AssertionError("unreachable")
