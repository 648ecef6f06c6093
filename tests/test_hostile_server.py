"""The runner against a server that sends what it should not: every request becomes a
record (ok, or failed with the reason), every level is stored, the sweep ends within its
bounds, and the API key is in no written byte. A hostile `/metrics` costs the level its
server signals at most, never the level or its timing.

One aiohttp server on 127.0.0.1, in a thread, plays every mode: the request's model name
picks how /v1/chat/completions answers, the path picks how /metrics/<mode> answers. Every
handler is bounded (it ends, or is cancelled when the client gives up)."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import orjson
import polars as pl
import pytest
from aiohttp import web

from loadlens.analysis.failures import failure_kind
from loadlens.runner.loadgen import Level, Plan
from loadlens.runner.scrape import Sampler, parse_metrics, read_exposition
from loadlens.runner.sweep import Target, sweep
from loadlens.runner.workloads import synthetic
from loadlens.warehouse import Warehouse

KEY = "sk-hostile-test-key-7731"
TIMEOUT_S = 1.0  # per request: the modes that never finish end here
PERIOD_S = 0.5  # of the scrapes


def _sse(obj: object) -> bytes:
    return b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj).encode()) + b"\n\n"


def _chunk(text: str | None, finish: str | None = None) -> dict[str, object]:
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}


def _usage(completion_tokens: object) -> dict[str, object]:
    return {"choices": [], "usage": {"prompt_tokens": 8, "completion_tokens": completion_tokens}}


LONG_ERROR = "x" * 190 + f" {KEY} was refused"  # the key straddles the cut at 200

# mode -> the events of one streamed response (after the headers)
STREAMS: dict[str, list[object]] = {
    "malformed-sse": [b'{"choices": [{"delta": {"content": "a"'],
    "array": [[1, 2, 3]],
    "choices-string": [{"choices": "nope"}],
    "delta-string": [{"choices": [{"delta": "nope"}]}],
    "nan": [b'{"choices": [{"delta": {"content": "a"}, "finish_reason": null}], "x": NaN}'],
    "usage-high": [_chunk("a"), _chunk("b", "stop"), _usage(5000)],
    "usage-zero": [_chunk("a"), _chunk("b", "stop"), _usage(0)],
    "usage-negative": [_chunk("a"), _chunk("b", "stop"), _usage(-5)],
    "usage-string": [_chunk("a"), _chunk("b", "stop"), _usage("many")],
    "usage-float": [_chunk("a"), _chunk("b", "stop"), _usage(2.5)],
    "usage-huge": [_chunk("a"), _chunk("b", "stop"), _usage(2**70)],
    "no-finish": [_chunk("a"), _chunk("b")],
    "key-in-error-event": [{"error": {"message": f"bad key {KEY}"}}],
    "key-cut-in-error-event": [{"error": {"message": LONG_ERROR}}],
    "vllm-error-event": [_chunk("a"), {"object": "error", "message": "engine dead", "code": 500}],
}  # fmt: skip

# mode -> (status every request ends with, the kind the brief gives its failures)
EXPECTED: dict[str, tuple[str, str | None]] = {
    **{m: ("error", None) for m in STREAMS},
    "vllm-error-event": ("error", "HTTP 500"),
    **{m: ("ok", None) for m in STREAMS if m.startswith("usage-")},
    "endless": ("timeout", "timed out"),
    "line-10mb": ("error", None),
    "slow-loris": ("timeout", "timed out"),
    "slow-headers": ("timeout", "timed out"),
    "no-headers": ("timeout", "timed out"),
    "close-before-headers": ("error", "connection closed before a response"),
    "429": ("error", "rate-limited (HTTP 429)"),
    "429-retry-after": ("error", "rate-limited (HTTP 429)"),
    "echo-key": ("error", "HTTP 401"),
    "redirect-path": ("error", None),  # "HTTP 307: redirected to ..." (tested below)
    "redirect-host": ("error", None),
    "non-streamed": ("error", None),
    "empty-200": ("error", None),
}


class Hostile:
    """What the server saw: the Authorization headers that reached a redirect target,
    and how often each mode was asked for."""

    def __init__(self) -> None:
        self.redirected_auth: list[str] = []
        self.hits: dict[str, int] = {}
        self.port = 0
        pad = b"# padding of a hostile exposition\n"
        self.body_50mb = pad * (50 * 2**20 // len(pad) + 1)


def _good_stream_events() -> list[bytes]:
    return [_sse(_chunk(c)) for c in "abcd"] + [
        _sse(_chunk("e", "stop")),
        _sse(_usage(5)),
        b"data: [DONE]\n\n",
    ]


def _app(state: Hostile) -> web.Application:
    async def stream(
        request: web.Request, events: list[bytes], gap_s: float = 0.0
    ) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for event in events:
            await resp.write(event)
            if gap_s:
                await asyncio.sleep(gap_s)
        return resp

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        mode = str(body.get("model", ""))
        state.hits[mode] = state.hits.get(mode, 0) + 1
        if mode == "ok":
            return await stream(request, _good_stream_events(), gap_s=0.02)
        if mode in STREAMS:
            events = [_sse(e) for e in STREAMS[mode]]
            return await stream(request, [*events, b"data: [DONE]\n\n"])
        return await HANDLERS[mode](request)

    async def endless(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for _ in range(10_000):  # bounded: ~50 s, far past the client's timeout
            await resp.write(_sse(_chunk("a")))
            await asyncio.sleep(0.005)
        return resp

    async def line_10mb(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b'data: {"choices": [{"delta": {"content": "')
        for _ in range(10 * 16):
            await resp.write(b"a" * 2**16)
        await resp.write(b'"}, "finish_reason": "stop"}]}\n\ndata: [DONE]\n\n')
        return resp

    async def slow_loris(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for byte in _sse(_chunk("a", "stop")):
            await resp.write(bytes([byte]))
            await asyncio.sleep(1.0)
        return resp

    async def slow_headers(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        for byte in b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n":
            request.transport.write(bytes([byte]))
            await asyncio.sleep(1.0)
        return web.StreamResponse()

    async def no_headers(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(30)
        return web.StreamResponse()

    async def close_before_headers(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.abort()
        return web.StreamResponse()

    async def too_many(request: web.Request) -> web.Response:
        return web.json_response({"error": {"message": "slow down"}}, status=429)

    async def too_many_retry(request: web.Request) -> web.Response:
        return web.json_response(
            {"error": {"message": "rate limit"}}, status=429, headers={"Retry-After": "1"}
        )

    async def echo_key(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        return web.json_response({"error": {"message": f"Incorrect API key: {auth}"}}, status=401)

    async def redirect_path(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect("/v1/elsewhere/chat/completions")

    async def redirect_host(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(f"http://localhost:{state.port}/capture/chat/completions")

    async def non_streamed(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "choices": [{"message": {"content": "abc"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 8, "completion_tokens": 3},
            }
        )

    async def empty_200(request: web.Request) -> web.Response:
        return web.Response(status=200, body=b"")

    HANDLERS: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = {
        "endless": endless,
        "line-10mb": line_10mb,
        "slow-loris": slow_loris,
        "slow-headers": slow_headers,
        "no-headers": no_headers,
        "close-before-headers": close_before_headers,
        "429": too_many,
        "429-retry-after": too_many_retry,
        "echo-key": echo_key,
        "redirect-path": redirect_path,
        "redirect-host": redirect_host,
        "non-streamed": non_streamed,
        "empty-200": empty_200,
    }

    async def elsewhere(request: web.Request) -> web.StreamResponse:
        return await stream(request, _good_stream_events())

    async def capture(request: web.Request) -> web.StreamResponse:
        state.redirected_auth.append(request.headers.get("Authorization", ""))
        return await stream(request, _good_stream_events())

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"data": []})

    async def metrics(request: web.Request) -> web.StreamResponse:
        mode = request.match_info["mode"]
        state.hits[f"metrics/{mode}"] = state.hits.get(f"metrics/{mode}", 0) + 1
        if mode == "good":
            return web.Response(text=GOOD_METRICS)
        if mode == "nan-inf":
            return web.Response(text=NON_FINITE_METRICS)
        if mode == "garbage":
            return web.Response(body=GARBAGE_METRICS)
        if mode == "http-500":
            return web.Response(status=500, text=f"boom {KEY}")
        if mode == "50mb":
            return web.Response(body=state.body_50mb)
        if mode == "too-many-series":
            return web.Response(text="".join(f"s{i} 1\n" for i in range(300_000)))
        if mode == "slow":
            await asyncio.sleep(30)
            return web.Response(text=GOOD_METRICS)
        resp = web.StreamResponse()
        await resp.prepare(request)
        if mode == "endless":
            for _ in range(100_000):  # bounded: 6 GB, far past any limit of the scraper
                await resp.write(b"# endless\n" * 6_000)
        elif mode == "trickle":
            for byte in GOOD_METRICS.encode():
                await resp.write(bytes([byte]))
                await asyncio.sleep(0.05)
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/v1/elsewhere/chat/completions", elsewhere)
    app.router.add_post("/capture/chat/completions", capture)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/metrics/{mode}", metrics)
    return app


GOOD_METRICS = (
    "# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running 2\n"
    "# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting 1\n"
)
NON_FINITE_METRICS = (
    "vllm:num_requests_running NaN\n"
    "vllm:num_requests_waiting +Inf\n"
    'vllm:kv_cache_usage_perc{engine="0"} -Inf\n'
    'vllm:kv_cache_usage_perc{engine="1"} 0.5\n'
    "DCGM_FI_DEV_FB_USED 1e308\n"  # finite, but not once scaled to bytes
    "vllm:num_preemptions_total 3\n"
)
GARBAGE_METRICS = (
    b"\x00\xff\xfe garbage {{{ \n"
    b"vllm:num_requests_running{oops 7\n"
    b'vllm:num_requests_waiting{a="b"} twelve\n'
    b"vllm:kv_cache_usage_perc 0.25\n" + bytes(range(256))
)

# mode -> the reason its scrapes are skipped (None: they succeed)
METRICS_MODES: dict[str, str | None] = {
    "good": None,
    "nan-inf": None,
    "garbage": None,
    "http-500": "http_status",
    "50mb": "body_over_limit",
    "endless": "body_over_limit",
    "too-many-series": "too_many_series",
    "slow": "timeout",
    "trickle": "timeout",
}


@pytest.fixture(scope="module")
def hostile() -> Iterator[tuple[str, Hostile]]:
    state = Hostile()
    loop = asyncio.new_event_loop()
    # Handlers are cancelled when the client hangs up: none outlives its request.
    runner = web.AppRunner(_app(state), handler_cancellation=True, shutdown_timeout=1.0)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    state.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{state.port}", state
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def _sweep(
    tmp_path: Path, base: str, mode: str, metrics: tuple[str, ...] = ()
) -> tuple[float, pl.DataFrame, dict[str, object], Path]:
    """One level of 4 requests at concurrency 4; (seconds, stored requests, the run's
    workload notes, the level's trace)."""
    target = Target(
        f"{base}/v1",
        mode,
        api_key=KEY,
        use_nvml=False,
        timeout_s=TIMEOUT_S,
        metrics_urls=metrics,
        scrape_period_s=PERIOD_S,
    )
    started = time.perf_counter()
    with Warehouse(tmp_path / "w.duckdb") as wh:
        (outcome,) = sweep(
            target,
            synthetic(8, 5),
            [Level("concurrency", 4)],
            Plan(requests=4),
            deployment="hostile",
            out_dir=tmp_path / "runs",
            warehouse=wh,
        )
        runs = wh.runs(["hostile"])
        rows = wh.requests(runs["run_id"].to_list())
    elapsed = time.perf_counter() - started
    assert outcome.records == 4 and rows.height == 4 and runs.height == 1
    workload = json.loads(runs["workload"][0])
    return elapsed, rows, workload, outcome.path


def _no_key_written(root: Path) -> None:
    written = b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())
    assert KEY.encode() not in written
    # nor any part of it long enough to matter (a cut error text keeps no prefix)
    for i in range(len(KEY) - 7):
        assert KEY[i : i + 8].encode() not in written, KEY[i : i + 8]


@pytest.mark.parametrize("mode", list(EXPECTED))
def test_whatever_the_server_sends_the_level_is_stored(
    hostile: tuple[str, Hostile], tmp_path: Path, mode: str
) -> None:
    base, _ = hostile
    elapsed, rows, workload, _ = _sweep(tmp_path, base, mode)
    status, kind = EXPECTED[mode]
    # Bounded: one round of requests, each ended by its timeout at the latest.
    assert elapsed < TIMEOUT_S + 8, elapsed
    assert rows["status"].to_list() == [status] * 4, rows.select("status", "error").rows()
    if status == "ok":
        # A usage that is no count (or not this stream's) is set aside: the two streamed
        # tokens stand, and the run says how many requests disagreed.
        assert rows["output_tokens"].to_list() == [2] * 4
        if mode in ("usage-high", "usage-zero"):
            assert workload["usage_mismatch"]["requests"] == 4, workload  # type: ignore[index]
    else:
        assert rows["error"].null_count() == 0, rows["error"].to_list()
        kinds = {failure_kind(s, e) for s, e in rows.select("status", "error").rows()}
        assert len(kinds) == 1, kinds
        if kind is not None:
            assert kinds == {kind}, rows["error"].to_list()
    _no_key_written(tmp_path)


def test_a_redirect_is_not_followed_and_the_key_goes_nowhere_else(
    hostile: tuple[str, Hostile], tmp_path: Path
) -> None:
    base, state = hostile
    _, rows, _, _ = _sweep(tmp_path, base, "redirect-host")
    assert state.redirected_auth == []  # the other host never saw the request
    assert all(
        e.startswith("HTTP 307: ") and f"to http://localhost:{state.port}/capture/" in e
        for e in rows["error"]
    ), rows["error"].to_list()


def test_rate_limited_requests_are_not_retried(
    hostile: tuple[str, Hostile], tmp_path: Path
) -> None:
    base, state = hostile
    before = state.hits.get("429-retry-after", 0)
    _sweep(tmp_path, base, "429-retry-after")
    assert state.hits["429-retry-after"] - before == 4  # one send each: a retry hides a failure


@pytest.mark.parametrize("mode", list(METRICS_MODES))
def test_a_hostile_metrics_endpoint_costs_the_level_nothing(
    hostile: tuple[str, Hostile], tmp_path: Path, mode: str
) -> None:
    base, _ = hostile
    elapsed, rows, workload, trace = _sweep(tmp_path, base, "ok", (f"{base}/metrics/{mode}",))
    assert elapsed < 10, elapsed
    assert rows["status"].to_list() == ["ok"] * 4
    notes = workload["scrape"]
    assert isinstance(notes, dict), workload
    skipped: dict[str, int] = notes["skipped"]
    assert notes["planned"] == notes["done"] + sum(skipped.values()) >= 2, notes
    reason = METRICS_MODES[mode]
    # A machine too busy to answer within the period adds timeouts (and scrapes missed
    # behind them), never any other reason.
    busy = {"timeout", "missed"}
    if reason is None:
        assert notes["done"] >= 1 and set(skipped) <= busy, notes
    else:
        assert skipped.get(reason, 0) >= 1 and notes["done"] == 0, notes
        assert set(skipped) <= {reason, *busy}, notes
    assert 0 <= notes["lag_p50_s"] <= notes["lag_max_s"] < 5, notes
    samples = trace.with_name(trace.stem + ".metrics.jsonl")
    values = (
        [orjson.loads(line) for line in samples.read_bytes().splitlines()]
        if (samples.exists())
        else []
    )
    assert all(isinstance(v["value"], float) and math.isfinite(v["value"]) for v in values)
    signals = {v["signal"] for v in values}
    if mode == "good":
        assert signals == {"requests_running", "requests_waiting"}
    elif mode == "nan-inf":
        assert signals == {"kv_cache_usage", "preemptions_total"}
        # NaN, +Inf, -Inf and the overflowing 1e308 MiB, in every scrape
        assert notes["dropped_non_finite"] == 4 * notes["done"], notes
    elif mode == "garbage":
        assert signals == {"kv_cache_usage"}
        assert notes["dropped_unreadable"] == 2 * notes["done"], notes
    else:
        assert signals == set()
    _no_key_written(tmp_path)


def test_scrapes_never_queue_behind_a_slow_endpoint() -> None:
    """A scrape that does not answer within the period is abandoned, and the next runs
    on schedule: the level's time is not spent waiting for the endpoint."""

    async def main(url: str) -> Sampler:
        async with Sampler([url], period_s=0.2, use_nvml=False) as sampler:
            await asyncio.sleep(1.0)
        return sampler

    async def never(request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.Response()

    with _side_server(never) as url:
        started = time.perf_counter()
        sampler = asyncio.run(main(url))
        elapsed = time.perf_counter() - started
    notes = sampler.notes()
    assert elapsed < 5, elapsed
    assert notes["done"] == 0 and notes["skipped"] == {"timeout": notes["planned"]}, notes
    assert 4 <= notes["planned"] <= 8, notes  # ~1 s / 0.2 s, plus the closing scrape
    assert notes["lag_max_s"] < 0.15, notes  # each on its schedule, none behind another


class _side_server:
    """A one-route aiohttp server in a thread, for tests of the sampler alone."""

    def __init__(self, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> None:
        self.handler = handler

    def __enter__(self) -> str:
        self.loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_get("/metrics", self.handler)
        self.runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        return f"http://127.0.0.1:{port}/metrics"

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def test_the_cli_sweep_against_hostile_modes_ends_without_a_traceback(
    hostile: tuple[str, Hostile], tmp_path: Path
) -> None:
    base, _ = hostile
    db = tmp_path / "w.duckdb"
    result = subprocess.run(
        [
            *(sys.executable, "-m", "loadlens", "sweep", f"{base}/v1"),
            *("--model", "key-cut-in-error-event", "-d", "hostile", "--concurrency", "2"),
            *("--requests", "2", "--timeout", "1", "--no-nvml", "--api-key", KEY),
            *("--metrics-url", f"{base}/metrics/nan-inf", "--metrics-url", f"{base}/metrics/50mb"),
            *("--db", str(db), "--out-dir", str(tmp_path / "runs")),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert result.returncode == 0, result.stderr
    assert KEY not in result.stderr + result.stdout
    with Warehouse(db, read_only=True) as wh:
        rows = wh.requests(wh.runs(["hostile"])["run_id"].to_list())
    assert rows.height == 2 and (rows["status"] == "error").all()
    _no_key_written(tmp_path)


def test_non_finite_metrics_are_dropped_and_counted_not_stored_as_null() -> None:
    text = (
        "# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running NaN\n"
        "# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting 3\n"
    )
    assert parse_metrics(text) == {"requests_waiting": 3.0}
    read = read_exposition(NON_FINITE_METRICS)
    assert read.signals == {"kv_cache_usage": 0.5, "preemptions_total": 3.0}
    assert read.non_finite == 4 and read.unreadable == 0


def test_the_exposition_parser_reads_labels_escapes_and_timestamps() -> None:
    text = (
        "# HELP vllm:num_requests_running Requests.\n"
        'vllm:num_requests_running{model_name="a}b",x="q\\"uote"} 2 1712345678000\n'
        'vllm:num_requests_running{model_name="c"} 3.5\n'
        "vllm:num_requests_running_other 100\n"  # another metric sharing the prefix
        "sglang:token_usage 0.25\n"
        "vllm:num_requests_waiting{} 1e1\n"
    )
    read = read_exposition(text)
    assert read.signals == {
        "requests_running": 5.5,
        "kv_cache_usage": 0.25,
        "requests_waiting": 10.0,
    }
