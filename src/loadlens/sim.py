"""A small discrete-event model of an LLM server doing continuous batching (like vLLM).

It exists to make realistic traces without a GPU: the demo data, tests, and (later) a
loopback server. The model, per engine iteration:

1. Preempt: if the running sequences' KV cache would overflow when each grows by one
   token, evict the most recently admitted (vLLM's recompute mode): its KV is freed and it
   returns to the front of the queue; readmitted, it must prefill prompt + generated
   tokens again. Tokens already streamed stay streamed: the client sees one long gap.
2. Admit: FCFS from the waiting queue while a batch slot is free, the KV budget holds
   the sequence's prompt (plus anything it must recompute), and the iteration's prefill
   stays within its token budget (vLLM's max_num_batched_tokens).
3. Step: the iteration takes decode time, growing with batch size and resident KV tokens,
   plus the prefill time of every sequence admitted in it — which is why TTFT and every
   running request's inter-token gap grow with load (prefill stalls decode).
4. Every running sequence emits one token at the end of the step; finished ones leave,
   and their (closed-loop) user sends the next request at that moment.

Everything is seeded: the same arguments give the same trace, bit for bit.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

SAMPLE_PERIOD_S = 1.0


@dataclass(frozen=True)
class ServerProfile:
    """Costs of one model on one accelerator; times in seconds."""

    name: str
    max_num_seqs: int  # batch slots
    kv_cache_tokens: int  # KV budget across running sequences
    prefill_s_per_token: float
    decode_step_base_s: float  # one decode step with a batch of one
    decode_step_per_seq_s: float  # added per running sequence
    decode_step_per_kv_token_s: float  # added per resident KV token (attention reads)
    max_batched_tokens: int = 8192  # prefill tokens one iteration may take on
    jitter: float = 0.03  # relative log-normal noise on each step
    error_latency_s: float = 0.005  # how fast a failing request is answered


# Named profiles: the demo data and `loadlens serve-sim --profile` use them.
PROFILES = {
    # Think Llama-3.1-8B on one H100: ~25k prefill tok/s, ~7 ms decode steps.
    "h100-vllm-tp1": ServerProfile(
        name="h100-vllm-tp1",
        max_num_seqs=64,
        kv_cache_tokens=120_000,
        prefill_s_per_token=4.0e-5,
        decode_step_base_s=0.0070,
        decode_step_per_seq_s=0.00010,
        decode_step_per_kv_token_s=5.0e-8,
    ),
    # Slower and smaller: KV room for ~40 sequences, so it preempts beyond that.
    "a100-vllm-tp1": ServerProfile(
        name="a100-vllm-tp1",
        max_num_seqs=48,
        kv_cache_tokens=30_000,
        prefill_s_per_token=8.0e-5,
        decode_step_base_s=0.0120,
        decode_step_per_seq_s=0.00020,
        decode_step_per_kv_token_s=1.0e-7,
    ),
}


@dataclass(frozen=True)
class Workload:
    """Per-request prompt and output lengths (normal, clipped); output forced (ignore_eos)."""

    input_tokens_mean: float = 512
    input_tokens_sd: float = 128
    output_tokens_mean: float = 256
    output_tokens_sd: float = 64
    error_rate: float = 0.0  # fraction of requests answered with an HTTP 500


@dataclass
class SimRequest:
    seq: int
    start_s: float
    input_tokens: int
    output_tokens: int
    token_times: list[float] = field(default_factory=list, repr=False)
    preemptions: int = 0
    error: str = ""
    end_s: float | None = None

    @property
    def ttft_s(self) -> float | None:
        return self.token_times[0] - self.start_s if self.token_times else None

    @property
    def itl_s(self) -> list[float]:
        t = self.token_times
        return [b - a for a, b in itertools.pairwise(t)]

    @property
    def e2e_s(self) -> float | None:
        return self.token_times[-1] - self.start_s if self.token_times else None


@dataclass
class SimResult:
    requests: list[SimRequest]
    server_samples: list[tuple[float, str, float]]  # (t_s, signal, value)
    duration_s: float
    preemptions: int


@dataclass
class _Seq:
    req: SimRequest
    kv_tokens: int = 0  # resident in the cache
    generated: int = 0


class Engine:
    """The scheduler and cost model, one iteration at a time, with no clock of its own:
    `simulate` drives it in virtual time, `serve_sim` in real time."""

    def __init__(self, profile: ServerProfile, seed: int = 0) -> None:
        self.profile = profile
        self.rng = random.Random(seed)
        self.waiting: deque[_Seq] = deque()
        self.running: list[_Seq] = []
        self.kv_used = 0
        self.preemptions = 0
        self.prompt_tokens_total = 0
        self.generation_tokens_total = 0

    @property
    def busy(self) -> bool:
        return bool(self.waiting or self.running)

    def submit(self, req: SimRequest) -> None:
        self.waiting.append(_Seq(req))

    def signals(self) -> dict[str, float]:
        """What a Prometheus scrape of the engine would show now (canonical names)."""
        return {
            "kv_cache_usage": self.kv_used / self.profile.kv_cache_tokens,
            "requests_running": float(len(self.running)),
            "requests_waiting": float(len(self.waiting)),
            "preemptions_total": float(self.preemptions),
            "prompt_tokens_total": float(self.prompt_tokens_total),
            "generation_tokens_total": float(self.generation_tokens_total),
        }

    def step(self) -> tuple[float, list[tuple[SimRequest, bool]]]:
        """Schedule one iteration: its duration (s), and each sequence that emits a token
        at its end, with whether that token is its last. Empty when nothing can run."""
        p = self.profile
        # 1. Preempt the newest sequences until every running one can grow by a token.
        while self.running and self.kv_used + len(self.running) > p.kv_cache_tokens:
            victim = self.running.pop()
            self.kv_used -= victim.kv_tokens
            victim.kv_tokens = 0
            victim.req.preemptions += 1
            self.preemptions += 1
            self.waiting.appendleft(victim)
        # 2. Admit in order while a slot, KV room and the prefill token budget allow.
        prefill_tokens = 0
        while self.waiting and len(self.running) < p.max_num_seqs:
            head = self.waiting[0]
            need = head.req.input_tokens + head.generated
            # Room for its prompt, and for every running sequence's next token.
            if self.kv_used + need + len(self.running) + 1 > p.kv_cache_tokens:
                break
            if prefill_tokens and prefill_tokens + need > p.max_batched_tokens:
                break
            self.waiting.popleft()
            head.kv_tokens = need
            self.kv_used += need
            prefill_tokens += need
            self.running.append(head)
        if not self.running:
            return 0.0, []  # nothing fits: a prompt larger than the whole KV cache
        self.prompt_tokens_total += prefill_tokens
        # 3. One iteration: decode for the batch, plus the prefill of the admitted.
        duration = (
            p.decode_step_base_s
            + p.decode_step_per_seq_s * len(self.running)
            + p.decode_step_per_kv_token_s * self.kv_used
            + p.prefill_s_per_token * prefill_tokens
        ) * math.exp(self.rng.gauss(0.0, p.jitter))
        # 4. Every running sequence emits a token; finished ones leave.
        emitted: list[tuple[SimRequest, bool]] = []
        still: list[_Seq] = []
        for s in self.running:
            s.generated += 1
            s.kv_tokens += 1
            self.kv_used += 1
            done = s.generated >= s.req.output_tokens
            if done:
                self.kv_used -= s.kv_tokens
            else:
                still.append(s)
            emitted.append((s.req, done))
        self.running = still
        self.generation_tokens_total += len(emitted)
        return duration, emitted


def _length(rng: random.Random, mean: float, sd: float, minimum: int) -> int:
    return max(minimum, round(rng.gauss(mean, sd)))


def simulate(
    profile: ServerProfile,
    workload: Workload,
    concurrency: int,
    num_requests: int,
    seed: int = 0,
) -> SimResult:
    """Closed loop in virtual time: `concurrency` users, each sending its next request
    the moment its previous one ends."""
    rng = random.Random(seed)
    engine = Engine(profile, seed)
    sends: list[tuple[float, int]] = []  # (time, seq) of requests about to be sent
    requests: list[SimRequest] = []
    samples: list[tuple[float, str, float]] = []
    t, next_sample = 0.0, 0.0

    def send(at: float) -> None:
        if len(requests) < num_requests:
            seq = len(requests)
            requests.append(
                SimRequest(
                    seq=seq,
                    start_s=at,
                    input_tokens=_length(
                        rng, workload.input_tokens_mean, workload.input_tokens_sd, 16
                    ),
                    output_tokens=_length(
                        rng, workload.output_tokens_mean, workload.output_tokens_sd, 8
                    ),
                )
            )
            heapq.heappush(sends, (at, seq))

    for _ in range(concurrency):
        send(0.0)
    while sends or engine.busy:
        if not engine.busy and sends[0][0] > t:
            t = sends[0][0]  # idle until the next request arrives
        while sends and sends[0][0] <= t:
            req = requests[heapq.heappop(sends)[1]]
            if rng.random() < workload.error_rate:
                req.error = "HTTP 500: simulated server error"
                req.end_s = req.start_s + profile.error_latency_s
                send(req.end_s)
            else:
                engine.submit(req)
        while t >= next_sample:
            samples += [
                (next_sample, k, v)
                for k, v in engine.signals().items()
                if not k.endswith("tokens_total")
            ]
            next_sample += SAMPLE_PERIOD_S
        duration, emitted = engine.step()
        if not emitted:
            if sends:
                t = max(t, sends[0][0])
                continue
            break  # nothing can ever be admitted
        t += duration
        for req, done in emitted:
            req.token_times.append(t)
            if done:
                req.end_s = t
                send(t)
    return SimResult(requests, samples, duration_s=t, preemptions=engine.preemptions)


def _percentile(sorted_values: list[float], q: float) -> float:
    """numpy's default (linear, 'type 7') percentile of already sorted values."""
    h = (len(sorted_values) - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (h - lo) * (sorted_values[hi] - sorted_values[lo])


def _summary(name: str, values: list[float]) -> dict[str, float]:
    """vLLM's mean/median/std/pNN fields in milliseconds (0 when there is nothing)."""
    if not values:
        stats = dict.fromkeys(("mean", "median", "std", "p50", "p90", "p95", "p99"), 0.0)
    else:
        ordered = sorted(values)
        mean = math.fsum(values) / len(values)
        stats = {
            "mean": mean,
            "median": _percentile(ordered, 0.5),
            "std": math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values)),
            **{f"p{p}": _percentile(ordered, p / 100) for p in (50, 90, 95, 99)},
        }
    return {f"{stat}_{name}_ms": value * 1000 for stat, value in stats.items()}


def to_vllm_result(
    result: SimResult, *, model_id: str, concurrency: int, date: str, detailed: bool = True
) -> dict[str, Any]:
    """The result laid out as `vllm bench serve --save-result [--save-detailed]` writes it,
    with summary metrics as if run with `--percentile-metrics ttft,tpot,itl,e2el
    --metric-percentiles 50,90,95,99`. Per-request times are rounded to microseconds
    first, so the summary is exactly what a reader recomputes from the arrays."""
    reqs = result.requests
    ttfts = [round(r.ttft_s, 6) if r.ttft_s is not None else 0.0 for r in reqs]
    itls = [[round(g, 6) for g in r.itl_s] for r in reqs]
    out_lens = [r.output_tokens if not r.error else 0 for r in reqs]
    ok = [i for i, r in enumerate(reqs) if not r.error]
    e2e = {i: ttfts[i] + math.fsum(itls[i]) for i in ok}
    total_in = sum(reqs[i].input_tokens for i in ok)
    total_out = sum(out_lens[i] for i in ok)
    duration = result.duration_s
    per_second: dict[int, int] = {}
    for r in reqs:
        for tt in r.token_times:
            per_second[int(tt)] = per_second.get(int(tt), 0) + 1
    doc: dict[str, Any] = {
        "date": date,
        "endpoint_type": "openai-chat",
        "backend": "openai-chat",
        "label": None,
        "model_id": model_id,
        "tokenizer_id": model_id,
        "num_prompts": len(reqs),
        "request_rate": "inf",
        "burstiness": 1.0,
        "max_concurrency": concurrency,
        "duration": duration,
        "completed": len(ok),
        "failed": len(reqs) - len(ok),
        "total_input_tokens": total_in,
        "total_output_tokens": total_out,
        "request_throughput": len(ok) / duration,
        "request_goodput": None,
        "output_throughput": total_out / duration,
        "total_token_throughput": (total_in + total_out) / duration,
        "max_output_tokens_per_s": float(max(per_second.values(), default=0)),
        "max_concurrent_requests": concurrency,
    }
    if detailed:
        doc |= {
            "input_lens": [r.input_tokens for r in reqs],
            "output_lens": out_lens,
            "ttfts": ttfts,
            "itls": itls,
            "generated_texts": [""] * len(reqs),
            "errors": [r.error for r in reqs],
        }
    doc |= _summary("ttft", [ttfts[i] for i in ok])
    doc |= _summary(
        "tpot", [(e2e[i] - ttfts[i]) / (out_lens[i] - 1) for i in ok if out_lens[i] > 1]
    )
    doc |= _summary("itl", [g for i in ok for g in itls[i]])
    doc |= _summary("e2el", [e2e[i] for i in ok])
    return doc
