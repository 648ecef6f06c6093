"""The runner against a server that sends what it should not: every request becomes a
record (ok, or failed with the reason), every level is stored, and the API key is in no
written byte. The server runs on 127.0.0.1 in a thread, bounded by the test."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from aiohttp import web

from loadlens.runner.loadgen import Level, Plan
from loadlens.runner.scrape import parse_metrics
from loadlens.runner.sweep import Target, sweep
from loadlens.runner.workloads import synthetic
from loadlens.warehouse import Warehouse

KEY = "sk-hostile-test-key-7731"


def _sse(obj: object) -> bytes:
    return b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj).encode()) + b"\n\n"


def _chunk(text: str | None, finish: str | None = None) -> dict[str, object]:
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}


def _usage(completion_tokens: object) -> dict[str, object]:
    return {"choices": [], "usage": {"prompt_tokens": 8, "completion_tokens": completion_tokens}}


# mode -> the events of one streamed response (after the headers)
STREAMS: dict[str, list[object]] = {
    "array": [[1, 2, 3]],
    "choices-string": [{"choices": "nope"}],
    "delta-string": [{"choices": [{"delta": "nope"}]}],
    "nan": [b'{"choices": [{"delta": {"content": "a"}, "finish_reason": null}], "x": NaN}'],
    "usage-string": [_chunk("a"), _chunk("b", "stop"), _usage("many")],
    "usage-huge": [_chunk("a"), _chunk("b", "stop"), _usage(2**70)],
    "usage-negative": [_chunk("a"), _chunk("b", "stop"), _usage(-5)],
    "no-finish": [_chunk("a"), _chunk("b")],
    "key-in-error-event": [{"error": {"message": f"bad key {KEY}"}}],
}  # fmt: skip


async def _handle(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    mode = body.get("model", "")
    if mode == "echo-key":
        auth = request.headers.get("Authorization", "")
        return web.json_response({"error": {"message": f"Incorrect API key: {auth}"}}, status=401)
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    for event in STREAMS[mode]:
        await resp.write(_sse(event))
    await resp.write(b"data: [DONE]\n\n")
    return resp


@pytest.fixture(scope="module")
def hostile() -> Iterator[str]:
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", _handle)

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"data": []})

    app.router.add_get("/v1/models", models)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.run_until_complete(runner.cleanup())
        loop.close()


@pytest.mark.parametrize("mode", [*STREAMS, "echo-key"])
def test_whatever_the_server_sends_the_level_is_stored(
    hostile: str, tmp_path: Path, mode: str
) -> None:
    target = Target(hostile, mode, api_key=KEY, use_nvml=False, timeout_s=10.0)
    with Warehouse(tmp_path / "w.duckdb") as wh:
        (outcome,) = sweep(
            target,
            synthetic(8, 2),
            [Level("concurrency", 2)],
            Plan(requests=4),
            deployment="hostile",
            out_dir=tmp_path / "runs",
            warehouse=wh,
        )
        rows = wh.requests(wh.runs(["hostile"])["run_id"].to_list())
    assert outcome.records == 4 and rows.height == 4
    if mode.startswith("usage-"):
        # A usage that is no count is ignored: the two streamed tokens stand.
        assert rows["status"].to_list() == ["ok"] * 4 and rows["output_tokens"].to_list() == [2] * 4
    else:
        failed = rows.filter(pl.col("status") != "ok")
        assert failed.height == 4 and failed["error"].null_count() == 0, rows["error"].to_list()
    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert KEY.encode() not in written


def test_non_finite_metrics_are_dropped_not_stored_as_null() -> None:
    text = (
        "# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running NaN\n"
        "# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting 3\n"
    )
    assert parse_metrics(text) == {"requests_waiting": 3.0}
