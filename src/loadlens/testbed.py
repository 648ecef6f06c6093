"""A real engine on this machine: llama.cpp's `llama-server` with SmolLM2-135M, on CPU.

Built once per machine by `make engine` (scripts/engine.py), which leaves an
`engine.json` in the cache (`$LOADLENS_ENGINE_CACHE`, default ~/.cache/loadlens/engine).
The tests, `make demo-real` and the what-if benchmark start it here on 127.0.0.1, bounded
in time, and stop it by PID. A 135M model on two CPU cores is a test bed for the method
(a real scheduler, real slots, real queueing), not a capacity figure for production.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(os.environ.get("LOADLENS_ENGINE_CACHE", Path.home() / ".cache/loadlens/engine"))
MODEL_ALIAS = "smollm2"
NOTE = (
    "Measured on a real engine used as a test bed: llama.cpp's llama-server running "
    "SmolLM2-135M (Q4_1) on CPU cores. It shows the method on real scheduling and "
    "queueing; it is not a capacity figure for a production model or GPU."
)


@dataclass(frozen=True)
class Engine:
    server: Path
    model: Path
    model_name: str
    engine: str


def find() -> Engine | None:
    """The engine `make engine` built on this machine, or None."""
    for manifest in sorted(CACHE.glob("*/engine.json"), reverse=True):
        info = json.loads(manifest.read_text())
        engine = Engine(
            Path(info["server"]), Path(info["model"]), info["model_name"], info["engine"]
        )
        if engine.server.is_file() and engine.model.is_file():
            return engine
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Running:
    base_url: str  # http://127.0.0.1:P
    pid: int
    slots: int
    engine: Engine

    @property
    def api(self) -> str:
        return f"{self.base_url}/v1"

    @property
    def metrics(self) -> str:
        return f"{self.base_url}/metrics"


@contextlib.contextmanager
def serve(
    engine: Engine,
    *,
    slots: int = 8,
    context: int = 8192,
    threads: int = 1,
    max_seconds: float = 1800.0,
    log: Path | None = None,
) -> Iterator[Running]:
    """Run llama-server on 127.0.0.1 until the block ends (or `max_seconds`, whichever
    first), with `slots` parallel sequences sharing `context` tokens, `/metrics` on."""
    port = free_port()
    out = log.open("wb") if log else subprocess.DEVNULL
    proc = subprocess.Popen(
        [
            "timeout",
            "--signal=KILL",
            str(int(max_seconds)),
            str(engine.server),
            "-m",
            str(engine.model),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "-np",
            str(slots),
            "-c",
            str(context),
            "-t",
            str(threads),
            "--metrics",
            "-a",
            MODEL_ALIAS,
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: `timeout` and the server die together
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"llama-server exited with {proc.returncode} (see {log})")
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("llama-server did not become healthy within 120 s")
            time.sleep(0.25)
        yield Running(base, proc.pid, slots, engine)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # by PID: `timeout` and the server with it
        proc.wait(timeout=10)
        if log:
            out.close()  # type: ignore[union-attr]
