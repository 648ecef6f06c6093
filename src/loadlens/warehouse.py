"""The DuckDB warehouse: schema, migrations, idempotent transactional ingest, and reads.

Every row keeps its provenance: a run points at the source file (path, sha256, tool,
version) it came from, so every number in a brief can be traced back to its file.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import orjson
import polars as pl

from loadlens.errors import Interrupted, TraceFormatError, WarehouseError, ctrl_c
from loadlens.trace import Trace

if TYPE_CHECKING:
    from loadlens.analysis.level_sql import LevelAggregates
    from loadlens.config import SLO

DEFAULT_DB = "loadlens.duckdb"


@contextlib.contextmanager
def _interrupts_held() -> Iterator[list[int]]:
    """Hold SIGINT while the block runs (the main thread only; elsewhere Python delivers
    no signal): a Ctrl-C is noted, not raised, so a commit cannot be cut in two."""
    held: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield held
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield held
    finally:
        signal.signal(signal.SIGINT, previous)


# Append-only: migration i takes the schema from version i to i + 1.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE deployments (
        deployment VARCHAR PRIMARY KEY, model VARCHAR, engine VARCHAR,
        engine_version VARCHAR, hardware VARCHAR, gpus_per_replica INTEGER, params JSON
    );
    CREATE TABLE sources (
        sha256 VARCHAR PRIMARY KEY, path VARCHAR NOT NULL, format VARCHAR NOT NULL,
        tool VARCHAR NOT NULL, tool_version VARCHAR, deployment VARCHAR NOT NULL,
        ingested_at TIMESTAMP NOT NULL
    );
    CREATE TABLE runs (
        run_id VARCHAR PRIMARY KEY, deployment VARCHAR NOT NULL,
        source_sha256 VARCHAR NOT NULL, run_key VARCHAR NOT NULL, load_mode VARCHAR NOT NULL,
        load_value DOUBLE, started_at TIMESTAMP, duration_s DOUBLE, model VARCHAR,
        workload JSON, num_requests BIGINT, num_errors BIGINT
    );
    CREATE TABLE requests (
        run_id VARCHAR NOT NULL, seq BIGINT NOT NULL, start_s DOUBLE, ttft_s DOUBLE,
        e2e_s DOUBLE, input_tokens BIGINT, output_tokens BIGINT, itl_s DOUBLE[],
        status VARCHAR NOT NULL, error VARCHAR
    );
    CREATE TABLE run_stats (
        run_id VARCHAR NOT NULL, metric VARCHAR NOT NULL, statistic VARCHAR NOT NULL,
        value DOUBLE NOT NULL
    );
    CREATE TABLE server_samples (
        run_id VARCHAR NOT NULL, t_s DOUBLE NOT NULL, signal VARCHAR NOT NULL,
        value DOUBLE NOT NULL
    );
    """,
    # Engine, hardware and server arguments a file records for each run.
    "ALTER TABLE runs ADD COLUMN params JSON;",
]
SCHEMA_VERSION = len(MIGRATIONS)


def default_path() -> Path:
    return Path(os.environ.get("LOADLENS_DB", DEFAULT_DB))


@dataclass
class _Batch:
    """The rows of the files one ingest stores, gathered before one write per table."""

    shas: set[str] = field(default_factory=set)
    sources: list[list[Any]] = field(default_factory=list)
    runs: list[list[Any]] = field(default_factory=list)
    frames: dict[str, list[pl.DataFrame]] = field(
        default_factory=lambda: {"requests": [], "run_stats": [], "server_samples": []}
    )


@dataclass(frozen=True)
class IngestOutcome:
    path: str
    tool: str
    runs: int
    requests: int
    status: str  # "ingested" | "already ingested"
    deployment: str


class Warehouse:
    """A DuckDB file holding deployments, runs, requests, run stats and server samples."""

    def __init__(self, path: str | Path | None = None, *, read_only: bool = False) -> None:
        self.path = Path(path) if path is not None else default_path()
        if read_only and not self.path.exists():
            raise WarehouseError(
                f"{self.path}: no warehouse here yet (run `loadlens ingest` first, "
                "or point --db / LOADLENS_DB at one)"
            )
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.Error as e:
            raise WarehouseError(f"{self.path}: cannot open the warehouse: {e}") from None
        if not read_only:
            self._migrate()
        self._check_version()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()

    def _version(self) -> int:
        exists = self._scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
        )
        if not exists:
            return 0
        return int(self._scalar("SELECT coalesce(max(version), 0) FROM schema_version"))

    def _migrate(self) -> None:
        version = self._version()
        if version >= SCHEMA_VERSION:
            return
        with self._transaction():
            self.con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)")
            for i in range(version, SCHEMA_VERSION):
                self.con.execute(MIGRATIONS[i])
                self.con.execute("INSERT INTO schema_version VALUES (?)", [i + 1])

    def _check_version(self) -> None:
        version = self._version()
        if version > SCHEMA_VERSION:
            raise WarehouseError(
                f"{self.path}: schema version {version} is newer than this loadlens "
                f"understands ({SCHEMA_VERSION}); upgrade loadlens"
            )
        if version < SCHEMA_VERSION:
            raise WarehouseError(f"{self.path}: schema is at version {version}; open it writable")

    # -- ingest ---------------------------------------------------------------------------

    def ingest(
        self,
        traces: list[Trace],
        deployment: str,
        attributes: dict[str, Any] | None = None,
    ) -> list[IngestOutcome]:
        """Store traces under `deployment` in one transaction: all files land, or none.

        A file whose content (sha256) is already stored is reported and not stored twice.
        """
        outcomes: list[IngestOutcome] = []
        with self._transaction():
            self._upsert_deployment(deployment, attributes or {})
            shas = [t.source.sha256 for t in traces]
            marks = ", ".join("?" for _ in shas) or "NULL"
            prior = dict(
                self.con.execute(
                    f"SELECT sha256, deployment FROM sources WHERE sha256 IN ({marks})", shas
                ).fetchall()
            )
            batch = _Batch()
            for trace in traces:
                sha = trace.source.sha256
                if sha in prior or sha in batch.shas:
                    outcomes.append(
                        IngestOutcome(
                            trace.source.path,
                            trace.source.tool,
                            0,
                            0,
                            "already ingested",
                            prior.get(sha, deployment),
                        )
                    )
                    continue
                self._insert_trace(trace, deployment, batch)
                outcomes.append(
                    IngestOutcome(
                        trace.source.path,
                        trace.source.tool,
                        len(trace.runs),
                        trace.requests.height,
                        "ingested",
                        deployment,
                    )
                )
            try:
                self._write(batch)
            except duckdb.ConstraintException as e:
                # A source should have refused this; never let it surface as a crash.
                paths = [t.source.path for t in traces if t.source.sha256 in batch.shas]
                raise TraceFormatError(
                    Path(paths[0]) if len(paths) == 1 else Path(", ".join(paths[:3])),
                    "two rows share one key (a run or request appears twice): "
                    + " ".join(str(e).split()),
                ) from None
        return outcomes

    def describe(self, deployment: str, attributes: dict[str, Any]) -> None:
        """Set what is known of a deployment (hardware, engine, a note...), keeping the rest."""
        with self._transaction():
            self._upsert_deployment(deployment, attributes)

    def _upsert_deployment(self, deployment: str, attributes: dict[str, Any]) -> None:
        columns = ("model", "engine", "engine_version", "hardware", "gpus_per_replica")
        known = {k: attributes.get(k) for k in columns}
        params = {k: v for k, v in attributes.items() if k not in columns}
        self.con.execute(
            """
            INSERT INTO deployments VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (deployment) DO UPDATE SET
                model = coalesce(excluded.model, deployments.model),
                engine = coalesce(excluded.engine, deployments.engine),
                engine_version = coalesce(excluded.engine_version, deployments.engine_version),
                hardware = coalesce(excluded.hardware, deployments.hardware),
                gpus_per_replica = coalesce(excluded.gpus_per_replica,
                                            deployments.gpus_per_replica),
                params = coalesce(excluded.params, deployments.params)
            """,
            [deployment, *known.values(), orjson.dumps(params).decode() if params else None],
        )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write: all of it lands, or none. Ctrl-C before the commit rolls it back and
        raises Interrupted(committed=False); Ctrl-C during the commit waits for it and
        raises Interrupted(committed=True)."""
        self.con.begin()
        try:
            yield
        except BaseException as e:
            with contextlib.suppress(duckdb.Error):
                self.con.rollback()
            if not isinstance(e, Interrupted) and ctrl_c(e):
                raise Interrupted(committed=False) from None
            raise
        with _interrupts_held() as held:
            try:
                self.con.commit()
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    self.con.rollback()
                raise
        if held:
            raise Interrupted(committed=True)

    def _insert_trace(self, trace: Trace, deployment: str, batch: _Batch) -> None:
        """Add one trace's rows to `batch`; `_write` stores a batch in one statement per
        table (per-file statements cost more than the rows of a small file)."""
        s = trace.source
        batch.shas.add(s.sha256)
        now = datetime.now(UTC).replace(tzinfo=None)
        batch.sources.append([s.sha256, s.path, s.format, s.tool, s.tool_version, deployment, now])
        ids = {r.run_key: trace.run_id(r.run_key) for r in trace.runs}
        for r in trace.runs:
            batch.runs.append(
                [
                    ids[r.run_key],
                    deployment,
                    s.sha256,
                    r.run_key,
                    r.load_mode,
                    r.load_value,
                    r.started_at,
                    r.duration_s,
                    r.model,
                    orjson.dumps(r.workload).decode(),
                    r.num_requests,
                    r.num_errors,
                    orjson.dumps(r.params).decode() if r.params else None,
                ]
            )
        for table, frame in (
            ("requests", trace.requests),
            ("run_stats", trace.run_stats),
            ("server_samples", trace.server_samples),
        ):
            if not frame.is_empty():
                batch.frames[table].append(
                    frame.with_columns(
                        pl.col("run_key").replace_strict(ids, return_dtype=pl.String)
                    ).rename({"run_key": "run_id"})
                )

    def _write(self, batch: _Batch) -> None:
        if batch.sources:
            self.con.executemany("INSERT INTO sources VALUES (?, ?, ?, ?, ?, ?, ?)", batch.sources)
        if batch.runs:
            self.con.executemany(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", batch.runs
            )
        for table, frames in batch.frames.items():
            if not frames:
                continue
            columns = [c[0] for c in self.con.execute(f"DESCRIBE {table}").fetchall()]
            incoming = pl.concat([f.select(columns) for f in frames], rechunk=False)
            self.con.register("_incoming", incoming)
            try:
                self.con.execute(f"INSERT INTO {table} SELECT * FROM _incoming")
            finally:  # after an interrupted query the transaction refuses even this
                with contextlib.suppress(duckdb.Error):
                    self.con.unregister("_incoming")

    # -- reads ----------------------------------------------------------------------------

    def _scalar(self, query: str, args: list[Any] | None = None) -> Any:
        rows = self.con.execute(query, args or []).fetchall()
        return rows[0][0] if rows else None

    def _frame(self, query: str, args: list[Any] | None = None) -> pl.DataFrame:
        relation = self.con.sql(query, params=args or None)
        assert relation is not None
        return relation.pl()

    def delete(self, deployment: str, run_id: str | None = None) -> dict[str, int]:
        """Take back what was ingested: a deployment's runs (or one run of it), with their
        requests, statistics and samples, and the source files no run refers to any more;
        the deployment itself once it has no run. One transaction: all of it, or nothing.
        Returns the rows deleted per table."""
        where = "deployment = ?" + (" AND run_id = ?" if run_id else "")
        args = [deployment, run_id] if run_id else [deployment]
        ids = [
            r[0]
            for r in self.con.execute(f"SELECT run_id FROM runs WHERE {where}", args).fetchall()
        ]
        known = self._scalar("SELECT count(*) FROM deployments WHERE deployment = ?", [deployment])
        if not ids and not (known and run_id is None):
            what = f"run {run_id} of {deployment}" if run_id else f"deployment {deployment}"
            raise WarehouseError(f"{self.path}: no {what}")
        counts: dict[str, int] = {}
        with self._transaction():
            marks = ", ".join("?" for _ in ids) or "NULL"
            for table in ("requests", "run_stats", "server_samples", "runs"):
                counts[table] = self._scalar(
                    f"SELECT count(*) FROM {table} WHERE run_id IN ({marks})", ids
                )
                self.con.execute(f"DELETE FROM {table} WHERE run_id IN ({marks})", ids)
            orphans = "sha256 NOT IN (SELECT DISTINCT source_sha256 FROM runs)"
            counts["sources"] = self._scalar(f"SELECT count(*) FROM sources WHERE {orphans}")
            self.con.execute(f"DELETE FROM sources WHERE {orphans}")
            empty = "deployment NOT IN (SELECT DISTINCT deployment FROM runs) AND deployment = ?"
            counts["deployments"] = self._scalar(
                f"SELECT count(*) FROM deployments WHERE {empty}", [deployment]
            )
            self.con.execute(f"DELETE FROM deployments WHERE {empty}", [deployment])
        return counts

    def runs(self, deployments: list[str] | None = None) -> pl.DataFrame:
        """One row per run with its provenance, ordered by deployment and load."""
        where, args = _in_clause("r.deployment", deployments)
        return self._frame(
            f"""
            SELECT r.run_id, r.deployment, r.load_mode, r.load_value, r.started_at,
                   r.duration_s, r.model, r.workload, r.params, r.num_requests, r.num_errors,
                   s.tool, s.tool_version, s.format, s.path AS source_path,
                   s.sha256 AS source_sha256,
                   (SELECT count(*) FROM requests q WHERE q.run_id = r.run_id) AS request_rows
            FROM runs r JOIN sources s ON s.sha256 = r.source_sha256
            {where}
            ORDER BY r.deployment, r.load_mode, r.load_value NULLS LAST, r.run_id
            """,
            args,
        )

    def deployments(self) -> pl.DataFrame:
        return self._frame("SELECT * FROM deployments ORDER BY deployment")

    def _by_runs(self, table: str, run_ids: list[str], columns: str = "*") -> pl.DataFrame:
        where, args = _in_clause("run_id", run_ids)
        return self._frame(f"SELECT {columns} FROM {table} {where}", args)

    def requests(self, run_ids: list[str], *, gaps: bool = True) -> pl.DataFrame:
        """These runs' request rows; without `gaps`, every column but the per-token gaps
        (`itl_s`, most of a row's bytes)."""
        return self._by_runs("requests", run_ids, "*" if gaps else "* EXCLUDE (itl_s)")

    def run_stats(self, run_ids: list[str]) -> pl.DataFrame:
        return self._by_runs("run_stats", run_ids)

    def server_samples(self, run_ids: list[str]) -> pl.DataFrame:
        return self._by_runs("server_samples", run_ids)

    def level_aggregates(
        self,
        run_ids: list[str],
        slos: tuple[SLO, ...] = (),
        confidence: float = 0.95,
        exclude: pl.DataFrame | None = None,
    ) -> LevelAggregates:
        """What the level table needs of these runs' request rows (counts, token sums,
        goodput, means, the order statistics of percentiles and their bounds), computed
        by DuckDB where the rows are: no request row is loaded. `exclude` (run_id, seq)
        leaves those requests out (a cold start the user asked to exclude)."""
        from loadlens.analysis.level_sql import aggregate

        if exclude is None or exclude.is_empty():
            return aggregate(self.con, "requests", run_ids, slos, confidence)
        self.con.register("excluded_requests", exclude.select("run_id", "seq"))
        try:
            source = "(SELECT * FROM requests ANTI JOIN excluded_requests USING (run_id, seq))"
            return aggregate(self.con, source, run_ids, slos, confidence)
        finally:
            self.con.unregister("excluded_requests")

    def gap_stalls(self, run_ids: list[str], factor: float) -> dict[str, float]:
        """Per run with at least 10 per-token gaps: the share of gaps longer than `factor`
        times the run's median gap (a stream that stalls), computed where the gaps are."""
        where, args = _in_clause("run_id", run_ids)
        rows = self.con.execute(
            f"""
            WITH g AS (
                SELECT run_id, unnest(itl_s) AS gap FROM requests {where}
                {"AND" if where else "WHERE"} status = 'ok'
            ), m AS (
                SELECT run_id, median(gap) AS med, count(*) AS n FROM g GROUP BY run_id
            )
            SELECT g.run_id, avg(CASE WHEN g.gap > ? * m.med THEN 1.0 ELSE 0.0 END)
            FROM g JOIN m USING (run_id)
            WHERE m.n >= 10 AND m.med > 0
            GROUP BY g.run_id
            """,
            [*args, factor],
        ).fetchall()
        return {run_id: float(share) for run_id, share in rows}

    def counts(self) -> dict[str, int]:
        tables = ("deployments", "sources", "runs", "requests", "run_stats", "server_samples")
        return {t: int(self._scalar(f"SELECT count(*) FROM {t}")) for t in tables}


def _in_clause(column: str, values: list[str] | None) -> tuple[str, list[Any]]:
    if values is None:
        return "", []
    if not values:
        return "WHERE false", []
    return f"WHERE {column} IN ({', '.join('?' * len(values))})", list(values)
