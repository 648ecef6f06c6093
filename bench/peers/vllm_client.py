"""vLLM's own benchmark client as a peer of `make bench-peers`: a thin driver around
`vllm bench serve`'s request function, run with the Python of a throwaway venv
(bench/.peer-vllm, made by bench/peers/install.sh) where the vllm wheel is installed
without its dependencies.

The driver imports `vllm/benchmarks/lib/endpoint_request_func.py` from the installed
wheel by file path: importing it as `vllm.benchmarks...` would run `vllm/__init__.py`,
which needs torch and the rest of vLLM's dependencies. That module itself imports only
the standard library, aiohttp, regex and tqdm (installed in the venv), so nothing is
shimmed. It drives `async_request_openai_chat_completions` as `vllm bench serve
--request-rate inf --max-concurrency N --ignore-eos` does (vllm/benchmarks/serve.py,
`benchmark()`): one aiohttp session made like its `make_session(N)`, one single-prompt
test request first, then every request created as a task at once behind an
`asyncio.Semaphore(N)`, so N requests are in flight until the last ones drain.

Each request carries `request_id` (vLLM sends it as `x-request-id`), so the runner can
match it to serve-sim's own stamps. Prints one JSON object: per request the id and
vLLM's own measurements (`start_time` = perf_counter just before `session.post`, i.e.
before the body is encoded and sent; `ttft`; `latency` = last content chunk - start;
`output_tokens` from the usage chunk), the level's wall time as vLLM measures its
benchmark duration, and the process's CPU time over it.

    bench/.peer-vllm/bin/python bench/peers/vllm_client.py URL --streams 100 --requests 200
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import sys
import time
from importlib.metadata import version
from pathlib import Path
from types import ModuleType

import aiohttp


def load_request_funcs() -> ModuleType:
    spec = importlib.util.find_spec("vllm")  # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        sys.exit("vllm is not installed in this interpreter: run bench/peers/install.sh")
    path = Path(spec.submodule_search_locations[0], "benchmarks/lib/endpoint_request_func.py")
    name = "vllm_endpoint_request_func"
    module_spec = importlib.util.spec_from_file_location(name, path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # dataclasses look their module up while building
    module_spec.loader.exec_module(module)
    return module


async def main(args: argparse.Namespace) -> dict:
    erf = load_request_funcs()
    request_func = erf.async_request_openai_chat_completions
    prompt = " ".join(f"w{i}" for i in range(64))  # the same prompt as bench/lean_client.py

    def request(rid: str) -> object:
        return erf.RequestFuncInput(
            prompt=prompt,
            api_url=f"{args.url}/v1/chat/completions",
            prompt_len=64,
            output_len=args.tokens,
            model="bench",
            ignore_eos=True,
            request_id=rid,
        )

    inputs = [request(f"vllm-{args.tag}-{seq}") for seq in range(args.requests)]
    # As vllm/benchmarks/serve.py's make_session(max_concurrency).
    connector = aiohttp.TCPConnector(
        limit=args.streams,
        limit_per_host=args.streams,
        ttl_dns_cache=300,
        use_dns_cache=True,
        keepalive_timeout=60,
        enable_cleanup_closed=True,
        force_close=False,
        ssl=False,
    )
    async with aiohttp.ClientSession(
        connector=connector, trust_env=True, timeout=aiohttp.ClientTimeout(total=6 * 60 * 60)
    ) as session:
        test = await request_func(
            request_func_input=request(f"vllm-{args.tag}-test"), session=session
        )
        if not test.success:
            sys.exit(f"vLLM's single-prompt test request failed: {test.error}")
        semaphore = asyncio.Semaphore(args.streams)

        async def limited(inp: object) -> object:
            async with semaphore:
                return await request_func(request_func_input=inp, session=session)

        cpu0, t0 = time.process_time(), time.perf_counter()
        tasks = [asyncio.create_task(limited(inp)) for inp in inputs]
        outputs = await asyncio.gather(*tasks)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    records = [
        {
            "rid": inp.request_id,
            "ok": out.success,
            "start": out.start_time,
            "ttft": out.ttft,
            "latency": out.latency,
            "output_tokens": out.output_tokens,
            "error": out.error[-300:],
        }
        for inp, out in zip(inputs, outputs, strict=True)
    ]
    return {"records": records, "cpu_s": cpu, "wall_s": wall, "version": version("vllm")}


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--streams", type=int, default=100)
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--tokens", type=int, default=30)
    p.add_argument("--tag", default="x")
    print(json.dumps(asyncio.run(main(p.parse_args()))))
