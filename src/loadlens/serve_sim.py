"""The simulator as an OpenAI-compatible streaming server, with vLLM's Prometheus metrics.

`loadlens serve-sim` lets the runner, the tests and a new user see saturation without a
GPU: the same Engine as `sim.simulate`, stepped in real time. It binds to 127.0.0.1 only.
A token is one whitespace-separated word of the prompt; output length is `max_tokens`.

Faults for testing clients: a fraction of requests can fail with HTTP 500, drop the
connection mid-stream, or stall (stop streaming) for `stall_s` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import random
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from loadlens.sim import Engine, ServerProfile, SimRequest

HOST = "127.0.0.1"
DEFAULT_OUTPUT_TOKENS = 128


def instant_profile(step_s: float = 0.02) -> ServerProfile:
    """No compute model: every step takes `step_s`, with no batch or KV limit, so the
    server is never the bottleneck (for measuring the client itself)."""
    return ServerProfile(
        name="instant",
        max_num_seqs=10**9,
        kv_cache_tokens=10**15,
        prefill_s_per_token=0.0,
        decode_step_base_s=step_s,
        decode_step_per_seq_s=0.0,
        decode_step_per_kv_token_s=0.0,
        max_batched_tokens=10**15,
        jitter=0.0,
    )


@dataclass(frozen=True)
class Faults:
    fail_rate: float = 0.0  # HTTP 500 before any token
    drop_rate: float = 0.0  # connection closed after a few tokens
    stall_rate: float = 0.0  # streaming stops for stall_s after the first token
    stall_s: float = 30.0
    seed: int = 0
    close_rate: float = 0.0  # connection closed on arrival, before any response header
    usage_factor: float = 1.0  # completion_tokens reported x this (a server that miscounts)
    keepalive_s: float = 75.0  # idle keep-alive connections closed after this (llama.cpp: 5)


@dataclass
class _Live:
    """A request in the engine, and what the server stamped for it."""

    req: SimRequest
    arrival: float  # time.perf_counter() when the request was read
    tokens: asyncio.Queue[bool] = field(default_factory=asyncio.Queue)


class SimServer:
    def __init__(
        self,
        profile: ServerProfile,
        *,
        model: str = "loadlens-sim",
        faults: Faults = Faults(),
        seed: int = 0,
    ) -> None:
        self.profile = profile
        self.model = model
        self.faults = faults
        self.engine = Engine(profile, seed)
        self.rng = random.Random(faults.seed)
        self.live: dict[int, _Live] = {}
        self.records: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._seq = 0

    # -- the engine, in real time ------------------------------------------------------

    async def run_engine(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self.engine.busy:
                self._wake.clear()
                await self._wake.wait()
            started = loop.time()
            duration, emitted = self.engine.step()
            if not emitted:
                await asyncio.sleep(0.001)
                continue
            # Sleep to the step's end (not for `duration`): no drift from our own work.
            await asyncio.sleep(max(0.0, started + duration - loop.time()))
            now = time.perf_counter()
            for req, done in emitted:
                req.token_times.append(now)
                if (live := self.live.get(req.seq)) is not None:
                    live.tokens.put_nowait(done)

    # -- HTTP ----------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/completions", self.completions)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/health", self.health)  # vLLM's; clients (GuideLLM) probe it
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/sim/requests", self.stamped)

        async def engine_task(app: web.Application) -> AsyncIterator[None]:
            task = asyncio.create_task(self.run_engine())
            yield
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        app.cleanup_ctx.append(engine_task)
        return app

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"object": "list", "data": [{"id": self.model, "object": "model"}]}
        )

    async def health(self, request: web.Request) -> web.Response:
        return web.Response()

    async def stamped(self, request: web.Request) -> web.Response:
        """The server's own per-request record, to check what clients measure."""
        return web.json_response(self.records)

    async def metrics(self, request: web.Request) -> web.Response:
        registry = CollectorRegistry()
        registry.register(_VllmCollector(self))
        return web.Response(body=generate_latest(registry), content_type="text/plain")

    async def chat(self, request: web.Request) -> web.StreamResponse:
        arrival = time.perf_counter()  # before reading the body: the request is here
        body = await _json(request)
        messages = body.get("messages") or []
        prompt = " ".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
        return await self._serve(request, body, prompt, arrival, chat=True)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        arrival = time.perf_counter()
        body = await _json(request)
        return await self._serve(request, body, str(body.get("prompt", "")), arrival, chat=False)

    async def _serve(
        self,
        request: web.Request,
        body: dict[str, Any],
        prompt: str,
        arrival: float,
        *,
        chat: bool,
    ) -> web.StreamResponse:
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
        output_tokens = int(max_tokens) if max_tokens else DEFAULT_OUTPUT_TOKENS
        req = SimRequest(
            seq=self._seq,
            start_s=arrival,
            input_tokens=max(1, len(prompt.split())),
            output_tokens=max(1, output_tokens),
        )
        self._seq += 1
        fault = self._fault()
        record: dict[str, Any] = {
            "seq": req.seq,
            "request_id": request.headers.get("X-Request-Id"),
            "arrival": arrival,
            "input_tokens": req.input_tokens,
            "output_tokens": req.output_tokens,
            "fault": fault,
            "token_times": [],
        }
        self.records.append(record)
        if fault == "close":
            assert request.transport is not None
            request.transport.close()  # before any header: the client sees a disconnect
            return web.Response(status=499)
        if fault == "fail":
            await asyncio.sleep(self.profile.error_latency_s)
            raise web.HTTPInternalServerError(
                text=json.dumps({"error": {"message": "simulated server error"}}),
                content_type="application/json",
            )
        live = _Live(req, arrival)
        self.live[req.seq] = live
        self.engine.submit(req)
        self._wake.set()
        try:
            if body.get("stream"):
                try:
                    return await self._stream(request, body, live, record, fault, chat=chat)
                except ConnectionResetError:  # the client gave up (timeout) or went away
                    return web.Response(status=499)
            while not await live.tokens.get():
                pass
            record["token_times"] = list(req.token_times)
            return web.json_response(self._final(req, chat=chat))
        finally:
            self.live.pop(req.seq, None)

    def _fault(self) -> str | None:
        f = self.faults
        roll = self.rng.random()
        for name, rate in (
            ("fail", f.fail_rate),
            ("drop", f.drop_rate),
            ("stall", f.stall_rate),
            ("close", f.close_rate),
        ):
            if roll < rate:
                return name
            roll -= rate
        return None

    async def _stream(
        self,
        request: web.Request,
        body: dict[str, Any],
        live: _Live,
        record: dict[str, Any],
        fault: str | None,
        *,
        chat: bool,
    ) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        rid = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:16]}"
        created = int(time.time())
        n = 0
        while True:
            done = await live.tokens.get()
            n += 1
            record["token_times"].append(time.perf_counter())
            await resp.write(_sse(self._chunk(rid, created, n, done, chat=chat)))
            if fault == "drop" and n >= 3 and not done:
                assert request.transport is not None
                request.transport.close()  # mid-stream, no [DONE]: a crashed server
                return resp
            if fault == "stall" and n == 1:
                await asyncio.sleep(self.faults.stall_s)
            if done:
                break
        options = body.get("stream_options") or {}
        if options.get("include_usage"):
            await resp.write(
                _sse(
                    {
                        "id": rid,
                        "object": "chat.completion.chunk" if chat else "text_completion",
                        "created": created,
                        "model": self.model,
                        "choices": [],
                        "usage": _usage(live.req, self.faults.usage_factor),
                    }
                )
            )
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    def _chunk(self, rid: str, created: int, n: int, done: bool, *, chat: bool) -> dict[str, Any]:
        text = f"tok{n} "
        finish = "length" if done else None
        if chat:
            delta: dict[str, Any] = {"content": text}
            if n == 1:
                delta["role"] = "assistant"
            choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish}
            kind = "chat.completion.chunk"
        else:
            choice = {"index": 0, "text": text, "finish_reason": finish}
            kind = "text_completion"
        return {
            "id": rid,
            "object": kind,
            "created": created,
            "model": self.model,
            "choices": [choice],
        }

    def _final(self, req: SimRequest, *, chat: bool) -> dict[str, Any]:
        text = "".join(f"tok{i} " for i in range(1, req.output_tokens + 1))
        choice: dict[str, Any] = (
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "length",
            }
            if chat
            else {"index": 0, "text": text, "finish_reason": "length"}
        )
        return {
            "id": f"cmpl-{uuid.uuid4().hex[:16]}",
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [choice],
            "usage": _usage(req),
        }


class _VllmCollector:
    """The engine's state under vLLM's metric names (V1: kv_cache_usage_perc is 0..1)."""

    def __init__(self, server: SimServer) -> None:
        self.server = server

    def collect(self) -> Any:
        s = self.server.engine.signals()
        labels = ["model_name"]
        model = [self.server.model]
        for name, key, doc in (
            ("vllm:num_requests_running", "requests_running", "Requests in model execution"),
            ("vllm:num_requests_waiting", "requests_waiting", "Requests waiting"),
            ("vllm:kv_cache_usage_perc", "kv_cache_usage", "KV-cache usage, 1 = 100%"),
        ):
            g = GaugeMetricFamily(name, doc, labels=labels)
            g.add_metric(model, s[key])
            yield g
        for name, key, doc in (
            ("vllm:num_preemptions", "preemptions_total", "Cumulative preemptions"),
            ("vllm:prompt_tokens", "prompt_tokens_total", "Prefill tokens processed"),
            ("vllm:generation_tokens", "generation_tokens_total", "Tokens generated"),
        ):
            c = CounterMetricFamily(name, doc, labels=labels)
            c.add_metric(model, s[key])
            yield c


def _usage(req: SimRequest, factor: float = 1.0) -> dict[str, int]:
    completion = round(req.output_tokens * factor)
    return {
        "prompt_tokens": req.input_tokens,
        "completion_tokens": completion,
        "total_tokens": req.input_tokens + completion,
    }


def _sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise web.HTTPBadRequest(text="request body is not JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="request body must be a JSON object")
    return body


async def start(server: SimServer, port: int = 0) -> tuple[web.AppRunner, int]:
    """Start on 127.0.0.1 (port 0: a free one); returns the runner and the bound port."""
    # Everything imported so far lives for the whole run: keep it out of the collector.
    # A full collection over it stalled the event loop for 76 ms, in which arriving
    # requests waited unstamped and clients billed the wait to the simulated engine.
    gc.collect()
    gc.freeze()
    runner = web.AppRunner(
        server.app(), access_log=None, keepalive_timeout=server.faults.keepalive_s
    )
    await runner.setup()
    site = web.TCPSite(runner, HOST, port)
    await site.start()
    sockets = site._server.sockets if site._server else []  # type: ignore[attr-defined]
    return runner, sockets[0].getsockname()[1]
