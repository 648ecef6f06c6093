"""One streamed request through the openai client (aiohttp transport), timed on the
monotonic clock. Nothing on the hot path but taking timestamps."""

from __future__ import annotations

import asyncio
import importlib
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
import openai
from openai import AsyncOpenAI, DefaultAioHttpClient

from loadlens.runner.workloads import Prompt

Api = Literal["chat", "completions"]
# The HTTP library under openai's client (httpx, or httpx2 in newer releases), for its
# Limits and errors: the client is configured and caught in its own terms.
_http = importlib.import_module(
    next(c for c in DefaultAioHttpClient.__mro__ if c.__name__ == "AsyncClient").__module__.split(
        "."
    )[0]
)


@dataclass
class Record:
    """One request as the client saw it; times in seconds on time.perf_counter()."""

    seq: int
    sent: float
    chunks: list[float] = field(default_factory=list)  # arrival of each content chunk
    ended: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    status: str = "ok"
    error: str | None = None


def make_client(base_url: str, api_key: str | None, timeout_s: float) -> AsyncOpenAI:
    """An AsyncOpenAI on aiohttp, without retries: a retried request would hide a failure."""
    return AsyncOpenAI(
        base_url=base_url,
        api_key=api_key or "EMPTY",
        max_retries=0,
        timeout=timeout_s,
        # No pool limit: aiohttp's default of 100 connections would cap the concurrency.
        http_client=DefaultAioHttpClient(
            limits=_http.Limits(max_connections=None, max_keepalive_connections=None)
        ),
    )


async def send(
    client: AsyncOpenAI,
    model: str,
    prompt: Prompt,
    seq: int,
    *,
    api: Api = "chat",
    timeout_s: float = 600.0,
    ignore_eos: bool = True,
    request_id: str | None = None,
) -> Record:
    """Stream one completion; failures become a status and an error text, never raise."""
    extra: dict[str, Any] = {"ignore_eos": True} if ignore_eos else {}
    # X-Request-Id (honoured by vLLM) ties our record to the server's logs.
    headers = {"X-Request-Id": request_id} if request_id else None
    record = Record(seq=seq, sent=time.perf_counter())
    finished = False
    try:
        async with asyncio.timeout(timeout_s):
            if api == "chat":
                stream: Any = await client.chat.completions.create(
                    model=model,
                    messages=prompt.messages,  # type: ignore[arg-type]
                    max_tokens=prompt.max_tokens,
                    stream=True,
                    stream_options={"include_usage": True},
                    extra_body=extra,
                    extra_headers=headers,
                )
            else:
                text = " ".join(m["content"] for m in prompt.messages)
                stream = await client.completions.create(
                    model=model,
                    prompt=text,
                    max_tokens=prompt.max_tokens,
                    stream=True,
                    stream_options={"include_usage": True},
                    extra_body=extra,
                    extra_headers=headers,
                )
            async for chunk in stream:
                now = time.perf_counter()
                if chunk.choices:
                    choice = chunk.choices[0]
                    content = choice.delta.content if api == "chat" else choice.text
                    if content:
                        record.chunks.append(now)
                    finished = finished or choice.finish_reason is not None
                if chunk.usage:
                    record.input_tokens = chunk.usage.prompt_tokens
                    record.output_tokens = chunk.usage.completion_tokens
        record.ended = time.perf_counter()
        if not finished:
            record.status, record.error = "error", "stream ended before a finish_reason"
    except TimeoutError:
        record.status, record.error = "timeout", f"no complete response within {timeout_s:g} s"
    except openai.APIStatusError as e:
        record.status, record.error = "error", f"HTTP {e.status_code}: {_message(e)}"
    except (openai.APIError, _http.HTTPError, aiohttp.ClientError, ConnectionError) as e:
        record.status, record.error = "error", f"connection: {type(e).__name__}: {e}"[:300]
    if record.output_tokens is None and record.status == "ok":
        record.output_tokens = len(record.chunks)  # the server reported no usage
    return record


def _message(e: openai.APIStatusError) -> str:
    body = e.body if isinstance(e.body, dict) else {}
    inner = body.get("error", body)
    return str(inner.get("message", e.message) if isinstance(inner, dict) else e.message)[:200]
