"""What the runner sends: synthetic prompts of target lengths, a JSONL prompt file, a
ShareGPT file, or a RAG-shaped profile (long context, short answer).

Token counts recorded for each request come from the server's usage report, never from
these targets: a synthetic prompt of N words is only roughly N tokens on a real tokenizer.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from loadlens.errors import ConfigError, TraceFormatError

# Short, common words: about one token each on most tokenizers.
WORDS = (  # noqa: SIM905
    "the of and to in is that for it as was with be by on not he this are or his from at "
    "which but have an they you were her she there one all we their has been if more when "
    "will would who so no time out up can only into do than other some what new very"
).split()


@dataclass(frozen=True)
class Prompt:
    messages: list[dict[str, str]]
    max_tokens: int


@dataclass(frozen=True)
class Length:
    """A token count: fixed (`256`) or normal (`256:64`, mean:sd), clipped to >= 1."""

    mean: float
    sd: float = 0.0

    @classmethod
    def parse(cls, spec: str | int) -> Length:
        text = str(spec)
        mean, _, sd = text.partition(":")
        try:
            return cls(float(mean), float(sd) if sd else 0.0)
        except ValueError:
            raise ConfigError(f"token length '{text}': expected N or MEAN:SD") from None

    def draw(self, rng: random.Random) -> int:
        return max(1, round(rng.gauss(self.mean, self.sd) if self.sd else self.mean))


class Workload:
    """An endless, seeded stream of prompts."""

    def __init__(
        self,
        prompts: list[Prompt] | None,
        input_len: Length,
        output_len: Length,
        seed: int = 0,
        description: dict[str, Any] | None = None,
    ) -> None:
        self.prompts = prompts
        self.input_len = input_len
        self.output_len = output_len
        self.seed = seed
        self.rng = random.Random(seed)
        self.description = description or {}
        self._next = 0
        # Drawn now, before any level starts, so no level pays for it.
        self._text = [] if prompts else self._words(max(4 * int(input_len.mean), 65_536))

    def shard(self, index: int, count: int) -> Workload:
        """Worker `index` of `count`'s part: every count-th prompt of a prompt file from
        `index` on (no two workers send the same prompt, which a prefix cache would serve
        unfairly fast), or synthetic draws from a generator of its own."""
        part = copy.copy(self)
        part.rng = random.Random(f"{self.seed}:{index}/{count}")
        if self.prompts:
            part.prompts = self.prompts[index::count] or self.prompts
            part._next = 0
        return part

    def _words(self, n: int) -> list[str]:
        return [self.rng.choice(WORDS) for _ in range(n)]

    def next(self) -> Prompt:
        if self.prompts:
            prompt = self.prompts[self._next % len(self.prompts)]
            self._next += 1
            return prompt
        n = self.input_len.draw(self.rng)
        # A slice of one long random text: a fresh prompt costs microseconds, not a
        # millisecond of random draws on the event loop that is timing other streams.
        if len(self._text) < n:  # a rare, very long prompt
            self._text = self._words(4 * n)
        start = self.rng.randrange(len(self._text) - n + 1)
        text = " ".join(self._text[start : start + n])
        return Prompt([{"role": "user", "content": text}], self.output_len.draw(self.rng))


def synthetic(input_tokens: str | int, output_tokens: str | int, seed: int = 0) -> Workload:
    i, o = Length.parse(input_tokens), Length.parse(output_tokens)
    return Workload(
        None,
        i,
        o,
        seed,
        {
            "kind": "synthetic",
            "input_tokens": str(input_tokens),
            "output_tokens": str(output_tokens),
        },
    )


def rag(seed: int = 0) -> Workload:
    """Long retrieved context, short answer: 4,096 ± 512 in, 128 ± 32 out."""
    w = synthetic("4096:512", "128:32", seed)
    return Workload(
        None,
        w.input_len,
        w.output_len,
        seed,
        {"kind": "rag", "input_tokens": "4096:512", "output_tokens": "128:32"},
    )


def from_file(path: Path, output_tokens: str | int | None = None, seed: int = 0) -> Workload:
    """A JSONL prompt file (`{"prompt"|"messages", "max_tokens"?}` per line) or a ShareGPT
    JSON (`[{"conversations": [{"from": "human", "value": ...}, ...]}]`)."""
    default_out = Length.parse(output_tokens or 256)
    rng = random.Random(seed)
    prompts: list[Prompt] = []
    raw = path.read_bytes()
    if path.suffix.lower() == ".jsonl":
        for n, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as e:
                raise TraceFormatError(path, f"not JSON: {e}", line=n) from None
            if "messages" in obj:
                messages = obj["messages"]
            elif "prompt" in obj:
                messages = [{"role": "user", "content": str(obj["prompt"])}]
            else:
                raise TraceFormatError(path, "expected 'prompt' or 'messages'", line=n)
            prompts.append(Prompt(messages, int(obj.get("max_tokens") or default_out.draw(rng))))
        kind = "jsonl"
    else:
        try:
            items = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise TraceFormatError(path, f"not valid JSON ({e})") from None
        for item in items if isinstance(items, list) else []:
            turns = item.get("conversations") or [] if isinstance(item, dict) else []
            human = next((t["value"] for t in turns if t.get("from") == "human"), None)
            reply = next((t["value"] for t in turns if t.get("from") == "gpt"), None)
            if human:
                out = len(reply.split()) if reply and output_tokens is None else None
                prompts.append(
                    Prompt(
                        [{"role": "user", "content": human}], max(1, out or default_out.draw(rng))
                    )
                )
        kind = "sharegpt"
    if not prompts:
        raise TraceFormatError(path, f"no prompts found (read as {kind})")
    rng.shuffle(prompts)
    return Workload(
        prompts,
        Length(0),
        default_out,
        seed,
        {"kind": kind, "file": str(path), "prompts": len(prompts)},
    )
