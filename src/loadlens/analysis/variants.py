"""What tells a deployment's runs apart besides load: workload and server settings.

A deployment's runs fall into *series*: runs that share input and output length targets,
dataset, tool tag, engine, hardware and server arguments, and so differ only in load. Every
per-load model (SLO limit, knee, zone, USL, plateau, collapse) is fitted per series; a
deployment with more than one series is analysed as one option per series, named
"<deployment> · <what differs>" (e.g. "h100 · in 8,000 tok"), so runs of different
workloads are never read as repeats of one load, nor one curve.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from loadlens.trace import stored_object

SERIES_SEPARATOR = " · "


def _count(value: Any) -> str:
    return f"{value:,.0f}" if isinstance(value, int | float) else str(value)


def facets(workload: dict[str, Any], params: dict[str, Any]) -> dict[str, str]:
    """What a run sent and what served it, as label -> text, in reading order."""
    out = {}
    for key, label in (("input_tokens", "in"), ("output_tokens", "out")):
        if workload.get(key) is not None:
            out[label] = _count(workload[key])
    if workload.get("dataset"):
        out["dataset"] = str(workload["dataset"])
    if workload.get("tag"):  # a tool's own label of the run (SGLang --tag: "1P4D")
        out["tag"] = str(workload["tag"])
    for key in ("engine", "hardware"):
        if params.get(key):
            out[key] = str(params[key])
    args = params.get("server_args")
    if isinstance(args, dict):
        out |= {str(k): str(v) for k, v in args.items()}
    return out


def join(f: dict[str, str]) -> str:
    """`in 1,024 / out 128 tok · max_num_seqs 64`."""
    f = dict(f)
    parts = []
    lengths = [f"{k} {f.pop(k)}" for k in ("in", "out") if k in f]
    if lengths:
        parts.append(" / ".join(lengths) + " tok")
    parts += [v if k in ("dataset", "engine", "hardware") else f"{k} {v}" for k, v in f.items()]
    return SERIES_SEPARATOR.join(parts)


def _run_facets(runs: pl.DataFrame) -> dict[str, tuple[str, dict[str, str]]]:
    return {
        r["run_id"]: (
            r["deployment"],
            facets(stored_object(r["workload"]), stored_object(r.get("params"))),
        )
        for r in runs.iter_rows(named=True)
    }


def _varying(peers: list[dict[str, str]]) -> set[str]:
    keys = {k for p in peers for k in p}
    return {k for k in keys if len({p.get(k) for p in peers}) > 1}


def run_variants(runs: pl.DataFrame) -> dict[str, str]:
    """Per run_id: what tells it apart from the other runs of its deployment (input length,
    a server argument...), in a few words; for a deployment's only run, its workload."""
    found = _run_facets(runs)
    by_deployment: dict[str, list[dict[str, str]]] = {}
    for deployment, f in found.values():
        by_deployment.setdefault(deployment, []).append(f)
    out = {}
    for run_id, (deployment, f) in found.items():
        peers = by_deployment[deployment]
        if len(peers) == 1:
            shown = {k: v for k, v in f.items() if k in ("in", "out", "dataset")}
        else:
            varying = _varying(peers)
            shown = {k: v for k, v in f.items() if k in varying}
        out[run_id] = join(shown)
    return out


def distinct_part(tag: str, tags: set[str]) -> str:
    """What tells one tag from the others: `1p2d` of `pd_1p2d_n100_in512_c64` among
    `pd_1p1d_n100_in512_c64`, ... (words split on `_`, `-`, spaces); the whole tag where
    nothing is shared."""
    import re

    def words(t: str) -> list[str]:
        return [w for w in re.split(r"[_\-\s]+", t) if w]

    shared = set.intersection(*(set(words(t)) for t in tags)) if tags else set()
    kept = [w for w in words(tag) if w not in shared]
    return "_".join(kept) if kept else tag


def series_names(runs: pl.DataFrame) -> dict[str, str]:
    """Per run_id: its series, "<deployment>" when all the deployment's runs differ only in
    load, else "<deployment> · <what differs>". A tool's tag (which often spells out the
    load too: "..._c64") names a series only where runs at one load differ by it alone."""
    found = _run_facets(runs)
    loads = {r["run_id"]: (r["load_mode"], r["load_value"]) for r in runs.iter_rows(named=True)}
    by_deployment: dict[str, list[dict[str, str]]] = {}
    for deployment, f in found.values():
        by_deployment.setdefault(deployment, []).append(f)
    named = {}
    for run_id, (deployment, f) in found.items():
        varying = _varying(by_deployment[deployment]) - {"tag"}
        named[run_id] = (deployment, {k: v for k, v in f.items() if k in varying})
    # Runs of one series at one load told apart only by their tag: the tag is the variant.
    seen: dict[tuple[str, str, Any], set[str | None]] = {}
    for run_id, (deployment, shown) in named.items():
        key = (deployment, join(shown), loads[run_id])
        seen.setdefault(key, set()).add(found[run_id][1].get("tag"))
    out = {}
    for run_id, (deployment, shown) in named.items():
        tags = seen[(deployment, join(shown), loads[run_id])]
        if len(tags) > 1 and (tag := found[run_id][1].get("tag")):
            shown = shown | {"tag": distinct_part(tag, {t for t in tags if t})}
        out[run_id] = deployment + SERIES_SEPARATOR + join(shown) if shown else deployment
    return out
