"""One request, timed on the monotonic clock, nothing on the hot path but taking stamps.

Streamed requests (the load a sweep applies) go straight through an aiohttp session of
ours: the JSON body is encoded once, the response's raw bytes are stamped on arrival and
parsed only after the stream ends. The openai SDK's request path (building the request,
its typed-parameter transform, httpx's layers of async generators) cost about half the
client's CPU per request, time during which no other stream's chunk can be stamped; it
serves where it serves the user: the base URL and key as the SDK reads them, model
listing (connection pre-warming), and the unstreamed path with its error types.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
import openai
import orjson
from openai import AsyncOpenAI, DefaultAioHttpClient

from loadlens.errors import causes
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
    streamed: bool = True  # False: one JSON body, no per-token times
    resent: int = 0  # re-sends after stale keep-alive connections lost it unsent
    usage_tokens: int | None = None  # the server's completion_tokens, where it disagrees
    due: float | None = None  # when the load wanted it sent (runner/selfcheck.py)


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
        # Never stored: a server may echo the key in an error (HTTP 401 bodies do).
        self.secrets = tuple(s for s in (api_key,) if s and len(s) >= 4)
        self.reused: set[str] = set()  # request ids whose last attempt rode a pooled connection
        trace = aiohttp.TraceConfig()

        async def connection_reused(session: Any, context: Any, params: Any) -> None:
            context.reused = True

        async def headers_sent(session: Any, context: Any, params: Any) -> None:
            context.request_id = rid = params.headers.get("X-Request-Id")
            if rid:
                if getattr(context, "reused", False):
                    self.reused.add(rid)
                else:
                    self.reused.discard(rid)

        async def body_sent(session: Any, context: Any, params: Any) -> None:
            # The body follows the headers in a task of its own: the request is complete,
            # and the server can act on it, once this chunk is written.
            if rid := getattr(context, "request_id", None):
                self.sent_at[rid] = time.perf_counter()

        trace.on_connection_reuseconn.append(connection_reused)
        trace.on_request_headers_sent.append(headers_sent)
        trace.on_request_chunk_sent.append(body_sent)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            trace_configs=[trace],
            timeout=aiohttp.ClientTimeout(total=None),  # each send bounds itself
        )
        transport = _transport_module().AiohttpTransport(client=self._session)
        self.openai = AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or "EMPTY",
            max_retries=0,  # a retried request would hide a failure
            timeout=timeout_s,
            # A redirect is reported, not followed: its round trip would be billed to the
            # server, and the request (with its key) would go where the user did not say.
            http_client=DefaultAioHttpClient(transport=transport, follow_redirects=False),
        )
        # The streamed path's URL and headers, as the SDK would build them.
        self.base_url = str(self.openai.base_url).rstrip("/")
        self.headers = {**self.openai.auth_headers, "Content-Type": "application/json"}

    async def prewarm(self, connections: int) -> None:
        """Open `connections` keep-alive connections (GET /models) before a level: a
        request on a fresh connection was seen arriving ~60 ms after it was stamped sent,
        which would be billed to the server."""
        await asyncio.gather(
            *(self.openai.models.list() for _ in range(min(connections, 1024))),
            return_exceptions=True,  # an endpoint without /models just stays cold
        )

    @property
    def session(self) -> aiohttp.ClientSession:
        return self._session

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
    stream: bool = True,
) -> Record:
    """One completion, streamed unless `stream` is off; failures become a status and an
    error text, never raise.

    The stream is read as raw server-sent-event lines, each stamped on arrival and parsed
    only after the stream ends: per-chunk parsing in the SDK would delay the stamps of
    every concurrent stream whenever the event loop is busy. Unstreamed, the one JSON body
    gives E2E, tokens and status, and there is no TTFT.
    """
    request_id = request_id or f"loadlens-{seq}-{time.perf_counter_ns()}"
    if not stream:
        return await _send_unstreamed(client, model, prompt, seq, api, timeout_s, ignore_eos,
                                      request_id)  # fmt: skip
    payload: dict[str, Any] = {
        "model": model,
        "max_tokens": prompt.max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
        **({"ignore_eos": True} if ignore_eos else {}),
    }
    if api == "chat":
        url, payload["messages"] = f"{client.base_url}/chat/completions", prompt.messages
    else:
        url = f"{client.base_url}/completions"
        payload["prompt"] = " ".join(m["content"] for m in prompt.messages)
    data = orjson.dumps(payload)
    # X-Request-Id (honoured by vLLM) ties our record to the server's logs.
    headers = {**client.headers, "X-Request-Id": request_id}
    record = Record(seq=seq, sent=time.perf_counter())
    deadline = time.perf_counter() + timeout_s
    while True:
        lines: list[tuple[float, bytes]] = []
        answered = False  # the server's response headers arrived
        try:
            async with (
                asyncio.timeout_at(_loop_time(deadline)),
                client.session.post(url, data=data, headers=headers, allow_redirects=False) as r,
            ):
                answered = True
                if r.status >= 300:
                    text = await r.content.read(MAX_ERROR_BYTES)
                    record.status = "error"
                    record.error = f"HTTP {r.status}: {_status_text(r.status, r.headers, text)}"
                else:
                    await _read_lines(r.content.iter_any(), lines, MAX_LINE_BYTES)
                    record.ended = time.perf_counter()
            if record.status == "ok":
                _read_events(record, lines, api)
        except ResponseTooLarge as e:
            record.status, record.error = "error", str(e)
        except Exception as e:  # every failure is classified below, none escapes
            if _resend(client, record, request_id, e, answered):
                continue
            record.status, record.error = classify(e, answered, timeout_s)
            _read_events(record, lines, api, complete=False)
        break
    return _finish(client, record, request_id)


async def _send_unstreamed(
    client: Client,
    model: str,
    prompt: Prompt,
    seq: int,
    api: Api,
    timeout_s: float,
    ignore_eos: bool,
    request_id: str,
) -> Record:
    """One completion as one JSON body, through the openai SDK: E2E, tokens and status,
    and no TTFT."""
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": prompt.max_tokens,
        "stream": False,
        "extra_headers": {"X-Request-Id": request_id},
        "extra_body": {"ignore_eos": True} if ignore_eos else {},
    }
    # The prompt rides in extra_body, which the SDK sends as is: its typed-parameter
    # transform walks every message (measured: 4.2 ms -> 2.6 ms of CPU per request).
    if api == "chat":
        create: Any = client.openai.chat.completions.with_streaming_response.create
        body["messages"] = []
        body["extra_body"]["messages"] = prompt.messages
    else:
        create = client.openai.completions.with_streaming_response.create
        body["prompt"] = ""
        body["extra_body"]["prompt"] = " ".join(m["content"] for m in prompt.messages)
    record = Record(seq=seq, sent=time.perf_counter(), streamed=False)
    deadline = time.perf_counter() + timeout_s
    while True:
        lines: list[tuple[float, bytes]] = []
        answered = False
        try:
            async with asyncio.timeout_at(_loop_time(deadline)), create(**body) as response:
                answered = True
                await _read_lines(response.iter_bytes(), lines, MAX_BODY_BYTES)
            record.ended = time.perf_counter()
            _read_body(record, b"\n".join(line for _, line in lines), api)
        except openai.APIStatusError as e:
            record.status, record.error = "error", f"HTTP {e.status_code}: {_message(e)}"
        except ResponseTooLarge as e:
            record.status, record.error = "error", str(e)
        except Exception as e:  # every failure is classified below, none escapes
            if _resend(client, record, request_id, e, answered):
                continue
            record.status, record.error = classify(e, answered, timeout_s)
        break
    return _finish(client, record, request_id)


def _resend(
    client: Client, record: Record, request_id: str, e: BaseException, answered: bool
) -> bool:
    """Whether to send again, counting it: a pooled connection the server had closed
    (llama.cpp's HTTP threads drop kept-alive connections they cannot serve) lost the
    request unsent, as aiohttp re-sends idempotent requests; at most MAX_RESENDS times."""
    if answered or record.resent >= MAX_RESENDS or request_id not in client.reused:
        return False
    if not _lost_unsent(e):
        return False
    record.resent += 1
    return True


def _finish(client: Client, record: Record, request_id: str) -> Record:
    """The send's stamp from the wire, and no secret in the error text."""
    record.sent = client.sent_at.pop(request_id, record.sent)
    client.reused.discard(request_id)
    if record.error:
        record.error = redact(record.error, client.secrets)
    return record


MAX_RESENDS = 3  # a request that meets stale pooled connections more often is lost
MAX_LINE_BYTES = 2**20  # one server-sent event line; a token's event is ~200 bytes
MAX_BODY_BYTES = 64 * 2**20  # a whole response, streamed or not
MAX_ERROR_BYTES = 64 * 2**10  # of an error response's body, read for its message


class ResponseTooLarge(Exception):
    """A response line or body past its bound: the request fails, unread past it."""


async def _read_lines(
    chunks: AsyncIterator[bytes], lines: list[tuple[float, bytes]], max_line: int
) -> None:
    """The response's lines, each stamped when the chunk that completes it arrives, read
    as raw bytes (decoding waits until the stream ends); a line longer than `max_line` or
    a body longer than MAX_BODY_BYTES ends the request, so an endless line or body costs
    bounded memory."""
    pending: list[bytes] = []  # the start of a line whose end has not arrived
    pending_bytes = total = 0
    async for chunk in chunks:
        stamp = time.perf_counter()
        total += len(chunk)
        if total > MAX_BODY_BYTES:
            raise ResponseTooLarge(f"response over {MAX_BODY_BYTES // 2**20} MiB")
        if b"\n" not in chunk:
            pending.append(chunk)
            pending_bytes += len(chunk)
            if pending_bytes > max_line:
                raise ResponseTooLarge(f"a response line over {max_line // 2**10:,} KiB")
            continue
        if pending:
            chunk, pending, pending_bytes = b"".join([*pending, chunk]), [], 0
        *complete, rest = chunk.split(b"\n")
        lines += [(stamp, kept) for line in complete if (kept := line.rstrip(b"\r"))]
        if len(rest) > max_line or any(len(line) > max_line for line in complete):
            raise ResponseTooLarge(f"a response line over {max_line // 2**10:,} KiB")
        if rest:
            pending, pending_bytes = [rest], len(rest)
    if pending:
        lines.append((time.perf_counter(), b"".join(pending).rstrip(b"\r")))


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """`text` without any of `secrets`, nor a piece of one cut off at its end (an error
    text truncated inside an echoed key)."""
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
        for n in range(len(secret) - 1, 3, -1):
            if text.endswith(secret[:n]):
                text = text[:-n] + "[redacted]"
                break
    return text


def _loop_time(deadline: float) -> float:
    """A time.perf_counter() deadline on the event loop's clock."""
    return asyncio.get_running_loop().time() + (deadline - time.perf_counter())


def _lost_unsent(e: BaseException) -> bool:
    """The connection was closed under a request before any response: on a pooled
    connection, the server had closed it idle and never saw the request."""
    return any(
        isinstance(c, aiohttp.ServerDisconnectedError | ConnectionResetError | BrokenPipeError)
        for c in causes(e)
    )


def classify(e: BaseException, answered: bool, timeout_s: float) -> tuple[str, str]:
    """(status, error) by what happened, read from the exception chain rather than from
    the SDK's own label (openai's aiohttp transport calls a closed connection a
    ConnectTimeout). "timeout" only where a timeout elapsed."""
    chain = causes(e)

    def has(*kinds: type[BaseException]) -> BaseException | None:
        return next((c for c in chain if isinstance(c, kinds)), None)

    if has(ConnectionRefusedError) or (
        (c := has(aiohttp.ClientConnectorError)) is not None and not answered
    ):
        return "error", f"connection refused: {_short(has(ConnectionRefusedError) or c)}"
    if has(aiohttp.ServerTimeoutError, _http.ReadTimeout):
        return "timeout", "read timeout: no data from the server within the read timeout"
    if isinstance(e, TimeoutError) or (
        has(TimeoutError, asyncio.TimeoutError) and not has(aiohttp.ClientError, OSError)
    ):
        return "timeout", f"total timeout: no complete response within {timeout_s:g} s"
    if has(aiohttp.ClientPayloadError, _http.RemoteProtocolError) and answered:
        return "error", f"stream cut: {_short(chain[-1])}"
    if has(aiohttp.ServerDisconnectedError):
        where = "mid-response (stream cut)" if answered else "before its response headers"
        return "error", f"connection closed {where}"
    if has(ConnectionResetError):
        return "error", "connection reset" + (" mid-response" if answered else "")
    if has(aiohttp.ClientError, OSError, _http.HTTPError, openai.APIError):
        return "error", f"connection: {_short(chain[-1])}"
    return "error", f"client: {_short(e)}"


def _short(e: BaseException | None) -> str:
    return f"{type(e).__name__}: {e}"[:240] if e is not None else ""


def _read_events(
    record: Record, lines: list[tuple[float, bytes]], api: Api, complete: bool = True
) -> None:
    """Fill chunk times, usage and status from the stamped `data:` lines of the stream."""
    finished = events = False
    for stamp, raw in lines:
        if not raw.startswith(b"data:"):
            continue
        events = True
        payload = raw[5:].strip().decode("utf-8", "replace")
        if payload == "[DONE]":
            continue
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError:
            record.status, record.error = "error", f"unreadable event: {payload[:80]}"
            return
        # Whatever a server sends, the request becomes a record: an event of the wrong
        # shape fails this request with the reason, never the level.
        if isinstance(event, dict) and (event.get("error") or event.get("object") == "error"):
            record.status, record.error = "error", _event_error(event)
            return
        choices = event.get("choices") if isinstance(event, dict) else None
        if not isinstance(event, dict) or not isinstance(choices or [], list):
            record.status, record.error = "error", f"malformed event: {payload[:80]}"
            return
        for choice in choices or []:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if not isinstance(choice, dict) or not isinstance(delta or {}, dict):
                record.status, record.error = "error", f"malformed event: {payload[:80]}"
                return
            delta = delta or {}
            # A reasoning model streams its thinking first: those are output tokens too.
            text = (
                (delta.get("content") or delta.get("reasoning_content"))
                if api == "chat"
                else choice.get("text")
            )
            if text:
                record.chunks.append(stamp)
            finished = finished or choice.get("finish_reason") is not None
        if usage := event.get("usage"):
            if not isinstance(usage, dict):
                record.status, record.error = "error", f"malformed usage: {payload[:80]}"
                return
            record.input_tokens = token_count(usage.get("prompt_tokens"))
            record.output_tokens = token_count(usage.get("completion_tokens"))
    if complete and not events:
        first = next((line for _, line in lines if line.strip()), b"").decode("utf-8", "replace")
        record.status = "error"
        record.error = f"no events in the response: {first[:80]}" if first else "empty response"
    elif complete and not finished:
        record.status, record.error = "error", "stream ended before a finish_reason"
    streamed = len(record.chunks)
    if record.output_tokens is None and record.status == "ok":
        record.output_tokens = streamed  # the server reported no usage
    elif record.output_tokens is not None and not usage_agrees(record.output_tokens, streamed):
        # A usage the stream cannot explain (5,000 tokens for 16 chunks) would turn into
        # absurd throughput: the streamed count stands, the server's is kept beside it.
        record.usage_tokens, record.output_tokens = record.output_tokens, streamed


def _event_error(event: dict[str, Any]) -> str:
    """An error event (`{"error": {"message": ..., "code": 500}}`, or vLLM's `{"object":
    "error", "message": ..., "code": 500}`) as an error text, its message cut to 200
    characters."""
    inner = event["error"] if isinstance(event.get("error"), dict) else event
    message = inner.get("message", event.get("error"))
    code = inner.get("code")
    status = f", status {code}" if isinstance(code, int) and not isinstance(code, bool) else ""
    return f"error event{status}: {str(message)[:200]}"


def _read_body(record: Record, text: bytes, api: Api) -> None:
    """Tokens and status from an unstreamed response's JSON body."""
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError:
        shown = text[:80].decode("utf-8", "replace")
        record.status, record.error = "error", f"unreadable response: {shown}"
        return
    usage = body.get("usage") if isinstance(body, dict) else None
    usage = usage if isinstance(usage, dict) else {}
    record.input_tokens = token_count(usage.get("prompt_tokens"))
    record.output_tokens = token_count(usage.get("completion_tokens"))
    choices = body.get("choices") if isinstance(body, dict) else None
    first = choices[0] if isinstance(choices, list) and choices else None
    message = first.get("message") if isinstance(first, dict) else None
    content = (
        (message.get("content") if isinstance(message, dict) else None)
        if api == "chat"
        else (first.get("text") if isinstance(first, dict) else None)
    )
    if not content:
        record.status, record.error = "error", "no content in the response"


MAX_TOKEN_COUNT = 2**31  # a count beyond any context: a broken report, not a number


def token_count(value: Any) -> int | None:
    """A usage count as the server wrote it, or None where it is no count (a string, a
    bool, a float, negative or absurd): the streamed count then stands."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value < MAX_TOKEN_COUNT else None


MAX_TOKENS_PER_CHUNK = 16  # speculative decoding and batched detokenising merge tokens


def usage_agrees(reported: int, streamed: int) -> bool:
    """A server's completion_tokens is plausible for `streamed` content chunks: at least
    one token per chunk (less one for a final chunk without text), at most a few per chunk."""
    if streamed == 0:
        return reported <= 1
    return streamed - 1 <= reported <= MAX_TOKENS_PER_CHUNK * streamed


def _message(e: openai.APIStatusError) -> str:
    body = e.body
    raw = (
        orjson.dumps(body)
        if isinstance(body, dict | list)
        else body.encode()
        if isinstance(body, str)
        else b""
    )
    return _status_text(e.status_code, e.response.headers, raw, e.message)


def _status_text(status: int, headers: Any, body: bytes, fallback: str | None = None) -> str:
    """What an HTTP error response says: a redirect's target (never followed), else the
    message of an OpenAI-style error body, else the start of the body; 200 characters."""
    if 300 <= status < 400:
        where = headers.get("location", "?")
        return f"not followed (give the endpoint's own URL); redirected to {where[:160]}"
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    inner = parsed.get("error", parsed) if isinstance(parsed, dict) else None
    if isinstance(inner, dict) and inner.get("message") is not None:
        return str(inner["message"])[:200]
    if isinstance(inner, str):
        return inner[:200]
    return (fallback or body.decode("utf-8", "replace").strip() or "no message")[:200]
