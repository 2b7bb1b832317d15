"""The `openai` engine: chat replies from an OpenAI-compatible endpoint (the OpenAI API, or a
`vllm serve` of one's own), with retries, a per-request answer cache and the API key kept out of
everything it writes."""
from __future__ import annotations

import math
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict
from email.utils import parsedate_to_datetime
from typing import Any, Mapping, Sequence

from openai import APIConnectionError, APIStatusError, APITimeoutError, OpenAI

from ..api_check import missing_key_message
from ..models import ModelSpec
from ..progress import progress
from .answer_cache import AnswerCache
from .base import ChatEngine, Completion, Sampling

# Longest wait between two attempts, Retry-After included: a longer pause is better spent
# failing with a clear error than sitting silent in a job.
_MAX_WAIT = 120.0
_CHECK_TIMEOUT = 10.0


class EndpointError(RuntimeError):
    """The endpoint cannot serve the model: no API key, unreachable, model not served, a request
    it rejects, or failures that outlasted the retries. The message never holds the key."""


def _api_key(spec: ModelSpec) -> str:
    missing = missing_key_message(spec)
    if missing:
        raise EndpointError(missing)
    return os.environ[spec.api_key_env].strip()


def _client(spec: ModelSpec, key: str, timeout: float) -> OpenAI:
    # The client's own retries are off: ours honour Retry-After, count attempts per the config
    # and report the last failure.
    return OpenAI(api_key=key, base_url=spec.base_url, timeout=timeout, max_retries=0)


def _scrub(text: str, key: str, limit: int = 400) -> str:
    """Server text made safe to show: the key masked (some servers echo it), length bounded."""
    text = text.replace(key, "***")
    return text if len(text) <= limit else text[:limit] + "…"


def _retryable(status: int) -> bool:
    return status in (408, 429) or status >= 500


def _context_too_long(error: APIStatusError) -> bool:
    """A 400 saying the conversation does not fit (OpenAI's code, vLLM's and OpenAI's wording)."""
    return error.code == "context_length_exceeded" or "maximum context length" in error.message.lower()


def _seconds(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def retry_after(headers: Mapping[str, str]) -> float | None:
    """The server's requested wait in seconds: `retry-after-ms` (OpenAI), then `Retry-After` as
    seconds or an HTTP date; None when absent or unreadable."""
    millis = _seconds(headers.get("retry-after-ms"))
    if millis is not None:
        return max(0.0, millis / 1000)
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _seconds(value)
    if seconds is None:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return max(0.0, seconds)


def _canonical_request(spec: ModelSpec, conversation: list[dict[str, str]], sampling: Sampling,
                       seed: int) -> dict[str, Any]:
    """Everything that determines an answer, and nothing else (no key, no endpoint URL: the same
    model behind a proxy or a new address answers from the same cache)."""
    return {"model": spec.path, "messages": [dict(m) for m in conversation], "temperature": sampling.temperature,
            "top_p": sampling.top_p, "max_tokens": sampling.max_tokens, "stop": list(sampling.stop), "seed": seed}


def _completion(response: Any) -> Completion:
    choice = response.choices[0]
    # Some OpenAI-compatible servers omit usage; 0 then means "not reported".
    tokens = response.usage.completion_tokens if response.usage is not None else 0
    return Completion(text=choice.message.content or "", tokens=tokens, finished=choice.finish_reason == "stop")


def _from_answer(answer: Mapping[str, Any]) -> Completion | None:
    stored = answer["completion"]
    return Completion(**stored) if stored is not None else None


class OpenAIChatEngine(ChatEngine):
    """One reply per conversation from `spec.path` at `spec.base_url`, `spec.concurrency` requests
    in flight; answers cached under `cache_dir` (None: no cache)."""

    def __init__(self, spec: ModelSpec, cache_dir: str | os.PathLike | None = None, *, backoff: float = 1.0):
        """`backoff`: the first retry's wait in seconds, doubled at each further retry."""
        self.spec = spec
        self.backoff = backoff
        self._key = _api_key(spec)
        self.client = _client(spec, self._key, spec.timeout)
        self.endpoint = str(self.client.base_url).rstrip("/")
        self.cache = AnswerCache(cache_dir) if cache_dir is not None else None

    def chat(self, conversations: Sequence[list[dict[str, str]]], sampling: Sampling) -> list[Completion | None]:
        requests = [_canonical_request(self.spec, c, sampling, sampling.seed + i) for i, c in enumerate(conversations)]
        results: list[Completion | None] = [None] * len(requests)
        pending = []
        for index, request in enumerate(requests):
            answer = self.cache.get(request) if self.cache is not None else None
            if answer is None:
                pending.append(index)
            else:
                results[index] = _from_answer(answer)
        # The bar shows even when all answers are cached: the job log then says so.
        self._fetch(requests, pending, results, cached=len(requests) - len(pending))
        return results

    def _fetch(self, requests: list[dict[str, Any]], pending: list[int], results: list[Completion | None],
               cached: int) -> None:
        """Send the uncached requests; fill `results` in input order whatever order they finish in."""
        retries = 0
        with progress(total=len(pending), desc=f"{self.spec.key} requests", unit="req") as bar, \
                ThreadPoolExecutor(max_workers=self.spec.concurrency) as pool:
            bar.set_postfix(cached=cached, retries=retries)
            futures = {pool.submit(self._answer, requests[i]): i for i in pending}
            try:
                for future in as_completed(futures):
                    completion, attempts = future.result()
                    results[futures[future]] = completion
                    retries += attempts - 1
                    bar.set_postfix(cached=cached, retries=retries, refresh=False)
                    bar.update()
            except BaseException:
                # A fatal answer stops the batch: queued requests are not sent (those in flight
                # finish and are cached, so a rerun does not pay for them twice).
                pool.shutdown(cancel_futures=True)
                raise

    def _answer(self, request: dict[str, Any]) -> tuple[Completion | None, int]:
        """One request's reply (None: too long for the context) and the attempts it took; cached."""
        completion, attempts = self._send(request)
        if self.cache is not None:
            self.cache.put(request, {"completion": asdict(completion) if completion is not None else None})
        return completion, attempts

    def _send(self, request: dict[str, Any]) -> tuple[Completion | None, int]:
        """POST one request, retrying 408/429/5xx, timeouts and connection errors."""
        attempts = self.spec.max_retries + 1
        failure = ""
        for attempt in range(attempts):
            try:
                # No stops goes as null, not []: not every server accepts an empty list.
                response = self.client.chat.completions.create(**{**request, "stop": request["stop"] or None})
                return _completion(response), attempt + 1
            except APIStatusError as error:
                if error.status_code == 400 and _context_too_long(error):
                    return None, attempt + 1
                failure = f"HTTP {error.status_code} ({_scrub(error.message, self._key)})"
                if not _retryable(error.status_code):
                    raise EndpointError(f"{self._where()} rejected the request: {failure}") from None
                wait = retry_after(error.response.headers)
            except APITimeoutError:
                failure, wait = f"no answer within {self.spec.timeout:g} s", None
            except APIConnectionError as error:
                failure, wait = f"connection failed ({_scrub(str(error.__cause__ or error), self._key)})", None
            if attempt + 1 < attempts:
                time.sleep(self._wait(attempt, wait))
        raise EndpointError(f"{self._where()} failed {attempts} times (max_retries={self.spec.max_retries}); "
                            f"last: {failure}")

    def _wait(self, attempt: int, server_wait: float | None) -> float:
        """The server's Retry-After when given, else exponential backoff with jitter (so that
        workers that failed together do not retry together)."""
        if server_wait is not None:
            return min(server_wait, _MAX_WAIT)
        return min(self.backoff * 2 ** attempt, _MAX_WAIT) * random.uniform(0.5, 1.0)

    def _where(self) -> str:
        return f"model '{self.spec.key}' ({self.spec.path} at {self.endpoint})"

    def close(self) -> None:
        self.client.close()


def check_endpoint(spec: ModelSpec, timeout: float = _CHECK_TIMEOUT) -> None:
    """Fail fast, before any GPU job, when the endpoint cannot serve `spec`: the API key's
    variable is unset, the endpoint does not answer, rejects the key, or does not serve the model."""
    key = _api_key(spec)
    with _client(spec, key, timeout) as client:
        endpoint = str(client.base_url).rstrip("/")
        try:
            served = sorted(model.id for model in client.models.list())
        except APIConnectionError as error:
            raise EndpointError(f"model '{spec.key}': cannot reach {endpoint} "
                                f"({_scrub(str(error.__cause__ or error), key)})") from None
        except APIStatusError as error:
            hint = f" (is {spec.api_key_env} the right key?)" if error.status_code in (401, 403) else ""
            raise EndpointError(f"model '{spec.key}': {endpoint} answered GET /models with HTTP "
                                f"{error.status_code}{hint}: {_scrub(error.message, key)}") from None
    if spec.path not in served:
        raise EndpointError(f"model '{spec.key}': {endpoint} does not serve '{spec.path}'; it serves: "
                            f"{', '.join(served) or '(nothing)'}")
