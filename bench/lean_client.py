"""The lean reference client of `make bench-runner`: the least a streaming load generator
can do, to measure loadlens's runner against.

N closed-loop streams on one aiohttp session; each request's body is built before the
level; the send is stamped when aiohttp has written the body (the same point loadlens
stamps), each received chunk on arrival; nothing is parsed until the level ends. Prints
one JSON object: per-request stamps (perf_counter seconds) and the process's CPU time.

    python bench/lean_client.py URL --streams 100 --requests 200 --tokens 30 [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time

import aiohttp


async def main(args: argparse.Namespace) -> dict:
    sent: dict[str, float] = {}

    async def body_sent(
        session: object, context: object, params: aiohttp.TraceRequestChunkSentParams
    ) -> None:
        sent[context.rid] = time.perf_counter()  # type: ignore[attr-defined]

    async def headers(session: object, context: object, params: object) -> None:
        context.rid = params.headers["X-Request-Id"]  # type: ignore[attr-defined]

    trace = aiohttp.TraceConfig()
    trace.on_request_headers_sent.append(headers)
    trace.on_request_chunk_sent.append(body_sent)
    bodies = [
        json.dumps(
            {
                "model": "bench",
                "messages": [{"role": "user", "content": " ".join(f"w{i}" for i in range(64))}],
                "max_tokens": args.tokens,
                "stream": True,
                "ignore_eos": True,
            }
        ).encode()
        for _ in range(args.requests)
    ]
    records: list[dict] = []
    url = f"{args.url}/v1/chat/completions"
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), trace_configs=[trace]
    ) as session:
        issued = 0

        async def stream() -> None:
            nonlocal issued
            while issued < args.requests:
                seq, issued = issued, issued + 1
                rid = f"lean-{args.tag}-{seq}"
                chunks: list[float] = []
                async with session.post(
                    url,
                    data=bodies[seq],
                    headers={"Content-Type": "application/json", "X-Request-Id": rid},
                ) as resp:
                    async for _ in resp.content.iter_any():
                        chunks.append(time.perf_counter())
                records.append({"rid": rid, "sent": sent.pop(rid), "chunks": chunks})

        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(stream() for _ in range(args.streams)))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    return {"records": records, "cpu_s": cpu, "wall_s": wall, "pid": os.getpid()}


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--streams", type=int, default=100)
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--tokens", type=int, default=30)
    p.add_argument("--tag", default="x")
    p.add_argument("--uvloop", action="store_true")
    a = p.parse_args()
    if a.uvloop:
        import uvloop

        uvloop.install()
    print(json.dumps(asyncio.run(main(a))))
