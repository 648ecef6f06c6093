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
import orjson
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


class Client:
    """An AsyncOpenAI on an aiohttp session of ours, which stamps each request the moment
    its headers are on the wire.

    The SDK spends about a millisecond building each request; in a burst of sends that
    work queues up, and a stamp taken before it would bill the client's own delay to the
    server. aiohttp's trace hook sees the request leave. Our session also lifts aiohttp's
    default cap of 100 connections, which would silently cap the concurrency.
    """

    def __init__(self, base_url: str, api_key: str | None, timeout_s: float) -> None:
        self.sent_at: dict[str, float] = {}
        trace = aiohttp.TraceConfig()

        async def headers_sent(session: Any, context: Any, params: Any) -> None:
            context.request_id = params.headers.get("X-Request-Id")

        async def body_sent(session: Any, context: Any, params: Any) -> None:
            # The body follows the headers in a task of its own: the request is complete,
            # and the server can act on it, once this chunk is written.
            if rid := getattr(context, "request_id", None):
                self.sent_at[rid] = time.perf_counter()

        trace.on_request_headers_sent.append(headers_sent)
        trace.on_request_chunk_sent.append(body_sent)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), trace_configs=[trace]
        )
        transport = _transport_module().AiohttpTransport(client=self._session)
        self.openai = AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or "EMPTY",
            max_retries=0,  # a retried request would hide a failure
            timeout=timeout_s,
            http_client=DefaultAioHttpClient(transport=transport),
        )

    async def prewarm(self, connections: int) -> None:
        """Open `connections` keep-alive connections (GET /models) before a level: a
        request on a fresh connection was seen arriving ~60 ms after it was stamped sent,
        which would be billed to the server."""
        await asyncio.gather(
            *(self.openai.models.list() for _ in range(min(connections, 1024))),
            return_exceptions=True,  # an endpoint without /models just stays cold
        )

    async def close(self) -> None:
        await self.openai.close()
        await self._session.close()


def _transport_module() -> Any:
    """The aiohttp transport module beside openai's DefaultAioHttpClient (vendored in newer
    releases, the httpx-aiohttp package in older ones: same layout, same `client=`)."""
    base = next(c for c in DefaultAioHttpClient.__mro__ if "aiohttp" in c.__module__.lower())
    return importlib.import_module(base.__module__.rsplit(".", 1)[0] + ".transport")


async def send(
    client: Client,
    model: str,
    prompt: Prompt,
    seq: int,
    *,
    api: Api = "chat",
    timeout_s: float = 600.0,
    ignore_eos: bool = True,
    request_id: str | None = None,
) -> Record:
    """Stream one completion; failures become a status and an error text, never raise.

    The stream is read as raw server-sent-event lines, each stamped on arrival and parsed
    only after the stream ends: per-chunk parsing in the SDK would delay the stamps of
    every concurrent stream whenever the event loop is busy.
    """
    request_id = request_id or f"loadlens-{seq}-{time.perf_counter_ns()}"
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": prompt.max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
        # X-Request-Id (honoured by vLLM) ties our record to the server's logs.
        "extra_headers": {"X-Request-Id": request_id},
        "extra_body": {"ignore_eos": True} if ignore_eos else {},
    }
    # The prompt rides in extra_body, which the SDK sends as is: its typed-parameter
    # transform walks every message and costs ~40% of the client's CPU per request
    # (measured: 4.2 ms -> 2.6 ms), time during which no other stream can be timed.
    if api == "chat":
        create: Any = client.openai.chat.completions.with_streaming_response.create
        body["messages"] = []
        body["extra_body"]["messages"] = prompt.messages
    else:
        create = client.openai.completions.with_streaming_response.create
        body["prompt"] = ""
        body["extra_body"]["prompt"] = " ".join(m["content"] for m in prompt.messages)
    record = Record(seq=seq, sent=time.perf_counter())
    lines: list[tuple[float, str]] = []
    try:
        async with asyncio.timeout(timeout_s), create(**body) as response:
            async for line in response.iter_lines():
                lines.append((time.perf_counter(), line))
        record.ended = time.perf_counter()
        _read_events(record, lines, api)
    except (TimeoutError, openai.APITimeoutError, _http.TimeoutException):
        record.status, record.error = "timeout", f"no complete response within {timeout_s:g} s"
        _read_events(record, lines, api, complete=False)
    except openai.APIStatusError as e:
        record.status, record.error = "error", f"HTTP {e.status_code}: {_message(e)}"
    except (openai.APIError, _http.HTTPError, aiohttp.ClientError, ConnectionError) as e:
        record.status, record.error = "error", f"connection: {type(e).__name__}: {e}"[:300]
        _read_events(record, lines, api, complete=False)
    record.sent = client.sent_at.pop(request_id, record.sent)
    return record


def _read_events(
    record: Record, lines: list[tuple[float, str]], api: Api, complete: bool = True
) -> None:
    """Fill chunk times, usage and status from the stamped `data:` lines of the stream."""
    finished = False
    for stamp, line in lines:
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            continue
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError:
            record.status, record.error = "error", f"unreadable event: {payload[:80]}"
            return
        for choice in event.get("choices") or []:
            text = (
                (choice.get("delta") or {}).get("content") if api == "chat" else choice.get("text")
            )
            if text:
                record.chunks.append(stamp)
            finished = finished or choice.get("finish_reason") is not None
        if usage := event.get("usage"):
            record.input_tokens = usage.get("prompt_tokens")
            record.output_tokens = usage.get("completion_tokens")
    if complete and not finished:
        record.status, record.error = "error", "stream ended before a finish_reason"
    if record.output_tokens is None and record.status == "ok":
        record.output_tokens = len(record.chunks)  # the server reported no usage


def _message(e: openai.APIStatusError) -> str:
    body = e.body if isinstance(e.body, dict) else {}
    inner = body.get("error", body)
    return str(inner.get("message", e.message) if isinstance(inner, dict) else e.message)[:200]
