"""A small discrete-event model of an LLM server doing continuous batching (like vLLM).

It exists to make realistic traces without a GPU: the demo data, the tests, and the
loopback server (`serve_sim`). The model, per engine iteration:

1. Preempt: if the running sequences' KV cache would overflow when each grows by one
   token, evict the most recently admitted (vLLM's recompute mode): its KV is freed and it
   returns to the front of the queue; readmitted, it must prefill prompt + generated
   tokens again. Tokens already streamed stay streamed: the client sees one long gap.
2. Admit: FCFS from the waiting queue while a batch slot is free, the KV budget holds
   the sequence's prompt (plus anything it must recompute) and one more token for every
   running sequence, and the iteration's prefill stays within its token budget (vLLM's
   max_num_batched_tokens).
3. Step: the iteration takes decode time, growing with batch size and resident KV tokens,
   plus the prefill time of every sequence admitted in it, which is why TTFT and every
   running request's inter-token gap grow with load (prefill stalls decode).
4. Every running sequence emits one token at the end of the step (an admitted one its
   first); finished ones leave, and their (closed-loop) user sends the next request then.

Everything is seeded: the same arguments give the same trace, bit for bit.
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import random
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SAMPLE_PERIOD_S = 1.0
ERROR_MESSAGE = "HTTP 500: simulated server error"
SAMPLED_SIGNALS = ("kv_cache_usage", "requests_running", "requests_waiting", "preemptions_total")


@dataclass(frozen=True, kw_only=True)
class ServerProfile:
    """Costs of one model on one accelerator; times in seconds."""

    name: str
    max_num_seqs: int  # batch slots
    kv_cache_tokens: int  # KV budget across running sequences
    prefill_s_per_token: float
    prefill_base_s: float = 0.0  # fixed cost of an iteration that prefills anything
    decode_step_base_s: float  # one decode step with a batch of one
    decode_step_per_seq_s: float  # added per running sequence
    decode_step_per_kv_token_s: float  # added per resident KV token (attention reads)
    max_batched_tokens: int = 8192  # prefill tokens one iteration may take on
    jitter: float = 0.03  # sd of the log-normal noise on each step's time
    error_latency_s: float = 0.005  # how fast a failing request is answered


# Named profiles: the demo data and `loadlens serve-sim --profile` use them.
PROFILES = {
    # Think Llama-3.1-8B on one H100: ~25k prefill tok/s, ~7 ms decode steps, KV room
    # for ~150 average sequences, so the 64 slots bind first.
    "h100-vllm-tp1": ServerProfile(
        name="h100-vllm-tp1",
        max_num_seqs=64,
        kv_cache_tokens=120_000,
        prefill_s_per_token=4.0e-5,
        prefill_base_s=0.008,
        decode_step_base_s=0.0070,
        decode_step_per_seq_s=0.00010,
        decode_step_per_kv_token_s=5.0e-8,
    ),
    # Slower and smaller: KV room for ~40 average sequences, so it preempts beyond that.
    "a100-vllm-tp1": ServerProfile(
        name="a100-vllm-tp1",
        max_num_seqs=48,
        kv_cache_tokens=30_000,
        prefill_s_per_token=8.0e-5,
        prefill_base_s=0.010,
        decode_step_base_s=0.0120,
        decode_step_per_seq_s=0.00020,
        decode_step_per_kv_token_s=1.0e-7,
    ),
}


@dataclass(frozen=True)
class Workload:
    """Per-request prompt and output lengths (normal, clipped to >= 16 and >= 8 tokens);
    the client forces the output length (ignore_eos), so it is exact."""

    input_tokens_mean: float = 512
    input_tokens_sd: float = 128
    output_tokens_mean: float = 256
    output_tokens_sd: float = 64
    error_rate: float = 0.0  # fraction of requests answered at once with an HTTP 500


@dataclass
class SimRequest:
    """One request as the client saw it; times in seconds from the benchmark's start."""

    seq: int
    start_s: float  # when it was sent
    input_tokens: int
    output_tokens: int  # 0 for a failed request, as vLLM records it
    token_times: list[float] = field(default_factory=list, repr=False)
    preemptions: int = 0
    error: str = ""
    end_s: float | None = None  # last token (or the error response)

    @property
    def ttft_s(self) -> float | None:
        if self.error:
            return 0.0  # vLLM's value for a request that never saw a token
        return self.token_times[0] - self.start_s if self.token_times else None

    @property
    def itl_s(self) -> list[float]:
        return [b - a for a, b in itertools.pairwise(self.token_times)]

    @property
    def e2e_s(self) -> float | None:
        if self.error:
            return 0.0
        return self.token_times[-1] - self.start_s if self.token_times else None


@dataclass
class SimResult:
    requests: list[SimRequest]  # in send order
    server_samples: list[tuple[float, str, float]]  # (t_s, signal, value), every second
    duration_s: float  # first send to last completion
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
        self.running: list[_Seq] = []  # in admission order: the newest is preempted first
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
            need = head.req.input_tokens + head.generated  # recompute what was evicted
            # Room for its prompt, and for every running sequence's next token: admitting
            # it must not force a preemption at the very next step.
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
        # 3. One iteration: decode for the batch, plus the prefill of the admitted, which
        # every running sequence waits for (no chunked prefill).
        prefill_s = p.prefill_base_s + p.prefill_s_per_token * prefill_tokens
        duration = (
            p.decode_step_base_s
            + p.decode_step_per_seq_s * len(self.running)
            + p.decode_step_per_kv_token_s * self.kv_used
            + (prefill_s if prefill_tokens else 0.0)
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
    rate: float | None = None,
) -> SimResult:
    """Closed loop in virtual time: `concurrency` users, each sending its next request
    the moment its previous one ends, until `num_requests` have been sent. With `rate`
    (requests/s), open loop instead: Poisson arrivals regardless of completions, and
    `concurrency` is ignored."""
    rng = random.Random(seed)
    arrivals = random.Random(seed + 1)
    engine = Engine(profile, seed)
    sends: list[tuple[float, int]] = []  # (time, seq) of requests about to reach the server
    requests: list[SimRequest] = []
    samples: list[tuple[float, str, float]] = []
    t, next_sample = 0.0, 0.0

    def send(at: float) -> None:
        if len(requests) < num_requests:
            seq = len(requests)
            n_in = _length(rng, workload.input_tokens_mean, workload.input_tokens_sd, 16)
            n_out = _length(rng, workload.output_tokens_mean, workload.output_tokens_sd, 8)
            requests.append(SimRequest(seq, at, n_in, n_out))
            heapq.heappush(sends, (at, seq))

    def sample_until(now: float) -> None:
        nonlocal next_sample
        while now >= next_sample:
            signals = engine.signals()
            samples.extend((next_sample, k, signals[k]) for k in SAMPLED_SIGNALS)
            next_sample += SAMPLE_PERIOD_S

    if rate is None:
        for _ in range(concurrency):
            send(0.0)
    else:
        at = 0.0
        for _ in range(num_requests):
            send(at)
            at += arrivals.expovariate(rate)
    while sends or engine.busy:
        if not engine.busy and sends[0][0] > t:
            t = sends[0][0]  # idle until the next request arrives
        while sends and sends[0][0] <= t:
            req = requests[heapq.heappop(sends)[1]]
            if rng.random() < workload.error_rate:
                req.error, req.output_tokens = ERROR_MESSAGE, 0
                req.end_s = req.start_s + profile.error_latency_s
                if rate is None:
                    send(req.end_s)
            else:
                engine.submit(req)
        sample_until(t)
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
                if rate is None:
                    send(t)
    end = max((r.end_s for r in requests if r.end_s is not None), default=0.0)
    sample_until(end)
    return SimResult(requests, samples, duration_s=end, preemptions=engine.preemptions)


# -- vLLM's result file ----------------------------------------------------------------
# vLLM summarises with numpy; these reproduce its float64 arithmetic operation for
# operation, so the summary equals numpy's over the file's own arrays, bit for bit.


def _sum(values: list[float], lo: int = 0, n: int | None = None) -> float:
    """numpy's pairwise summation (np.sum of a contiguous float64 array)."""
    n = len(values) - lo if n is None else n
    if n < 8:
        total = 0.0
        for i in range(lo, lo + n):
            total += values[i]
        return total
    if n <= 128:  # eight running sums, combined as a tree, then the tail
        r = values[lo : lo + 8]
        i = 8
        while i < n - n % 8:
            for j in range(8):
                r[j] += values[lo + i + j]
            i += 8
        total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        for k in range(lo + i, lo + n):
            total += values[k]
        return total
    half = n // 2
    half -= half % 8
    return _sum(values, lo, half) + _sum(values, lo + half, n - half)


def _percentile(ordered: list[float], q: float) -> float:
    """np.percentile's default ('linear', type 7) of sorted values, q in [0, 1]."""
    h = (len(ordered) - 1) * q
    lo = math.floor(h)
    a, b = ordered[lo], ordered[min(lo + 1, len(ordered) - 1)]
    t = h - lo
    # numpy interpolates from the nearer neighbour (its _lerp), which rounds differently.
    return b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t


def _summary(name: str, values: list[float]) -> dict[str, float]:
    """vLLM's mean/median/std/pNN fields in milliseconds (0 when there is nothing)."""
    stats = dict.fromkeys(("mean", "median", "std", "p50", "p90", "p95", "p99"), 0.0)
    if values:
        n, ordered = len(values), sorted(values)
        mean = _sum(values) / n
        mid = n // 2
        stats = {
            "mean": mean,
            "median": ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2,
            "std": math.sqrt(_sum([(v - mean) * (v - mean) for v in values]) / n),
            **{f"p{p}": _percentile(ordered, p / 100) for p in (50, 90, 95, 99)},
        }
    return {f"{stat}_{name}_ms": value * 1000 for stat, value in stats.items()}


def to_vllm_result(
    result: SimResult,
    *,
    model_id: str,
    concurrency: int | None,
    num_prompts: int | None = None,
    date: str,
    detailed: bool = True,
    request_rate: float | None = None,
    clock_origin_s: float | None = None,
) -> dict[str, Any]:
    """The result laid out as `vllm bench serve --save-result [--save-detailed]` writes it,
    with summary metrics as if run with `--percentile-metrics ttft,tpot,itl,e2el
    --metric-percentiles 50,90,95,99`, over successful requests. Per-request times are
    rounded to microseconds first, so the summary is what a reader recomputes from the
    arrays (e2e = ttft + the sum of the gaps, added in order).

    `request_rate`: an open-loop run (`--request-rate`, Poisson arrivals), written with
    `max_concurrency` null unless `concurrency` capped it. `clock_origin_s`: write each
    request's send time as newer clients do (`start_times`, `time.perf_counter()` readings:
    this origin plus the send's offset), after `itls`."""
    reqs = result.requests
    ttfts = [round(r.ttft_s or 0.0, 6) for r in reqs]
    itls = [[round(g, 6) for g in r.itl_s] for r in reqs]
    ok = [i for i, r in enumerate(reqs) if not r.error]
    e2e: dict[int, float] = {}
    for i in ok:
        gaps = 0.0
        for gap in itls[i]:  # added in order, as Python's sum() (before 3.12) does
            gaps += gap
        e2e[i] = ttfts[i] + gaps
    total_in = sum(reqs[i].input_tokens for i in ok)
    total_out = sum(reqs[i].output_tokens for i in ok)
    duration = result.duration_s
    # Peak tokens in a 1 s bucket, and peak in-flight requests, over successful ones.
    origin = min((reqs[i].start_s for i in ok), default=0.0)
    per_second = Counter(int(tt - origin) for i in ok for tt in reqs[i].token_times)
    events = sorted(
        [(reqs[i].start_s, 1) for i in ok] + [(reqs[i].end_s or 0.0, -1) for i in ok]
    )  # a departure sorts before an arrival at the same instant
    in_flight = list(itertools.accumulate(delta for _, delta in events))
    doc: dict[str, Any] = {
        "date": date,
        "endpoint_type": "openai-chat",
        "backend": "openai-chat",
        "label": None,
        "model_id": model_id,
        "tokenizer_id": model_id,
        "num_prompts": len(reqs) if num_prompts is None else num_prompts,
        "request_rate": "inf" if request_rate is None else request_rate,
        "burstiness": 1.0,
        "max_concurrency": concurrency,
        "duration": duration,
        "completed": len(ok),
        "failed": len(reqs) - len(ok),
        "total_input_tokens": total_in,
        "total_output_tokens": total_out,
        "request_throughput": len(ok) / duration if duration else 0.0,
        "request_goodput": None,
        "output_throughput": total_out / duration if duration else 0.0,
        "total_token_throughput": (total_in + total_out) / duration if duration else 0.0,
        "max_output_tokens_per_s": float(max(per_second.values(), default=0)),
        "max_concurrent_requests": max(in_flight, default=0),
    }
    if detailed:
        doc |= {
            "input_lens": [r.input_tokens for r in reqs],
            "output_lens": [r.output_tokens for r in reqs],
            "ttfts": ttfts,
            "itls": itls,
            **(
                {"start_times": [round(clock_origin_s + r.start_s, 6) for r in reqs]}
                if clock_origin_s is not None
                else {}
            ),
            "generated_texts": [""] * len(reqs),
            "errors": [r.error for r in reqs],
        }
    doc |= _summary("ttft", [ttfts[i] for i in ok])
    out_lens = {i: reqs[i].output_tokens for i in ok}
    doc |= _summary(
        "tpot", [(e2e[i] - ttfts[i]) / (out_lens[i] - 1) for i in ok if out_lens[i] > 1]
    )
    doc |= _summary("itl", [g for i in ok for g in itls[i]])
    doc |= _summary("e2el", [e2e[i] for i in ok])
    return doc


def write_vllm_result(path: str | Path, result_dict: dict[str, Any]) -> None:
    """Write a result dict as compact JSON (vLLM's own files are plain `json.dump`)."""
    Path(path).write_text(json.dumps(result_dict, separators=(",", ":"), allow_nan=False))
