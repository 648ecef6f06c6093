"""Ingest is idempotent, transactional and keeps provenance; the schema is versioned."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from tests.conftest import FIXTURES, vllm_doc

from loadlens import api
from loadlens.errors import TraceFormatError, WarehouseError
from loadlens.warehouse import SCHEMA_VERSION, Interrupted, Warehouse

GOLDEN = FIXTURES / "vllm" / "detailed-c4.json"


def test_same_file_twice_adds_no_rows(db: Path) -> None:
    with Warehouse(db) as wh:
        first = api.ingest(wh, [GOLDEN], "dep")
        counts = wh.counts()
        second = api.ingest(wh, [GOLDEN], "dep")
        assert [o.status for o in first.outcomes] == ["ingested"]
        assert [o.status for o in second.outcomes] == ["already ingested"]
        assert wh.counts() == counts
        assert counts["requests"] == 6 and counts["runs"] == 1


def test_copy_of_a_file_is_recognised_by_content(db: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.json"
    copy.write_bytes(GOLDEN.read_bytes())
    with Warehouse(db) as wh:
        api.ingest(wh, [GOLDEN], "dep")
        (outcome,) = api.ingest(wh, [copy], "other").outcomes
    assert outcome.status == "already ingested" and outcome.deployment == "dep"


def test_a_bad_file_leaves_the_warehouse_untouched(db: Path, write_vllm) -> None:
    good = write_vllm("a/good.json", vllm_doc([0.1, 0.2], [[0.01], [0.02]]))
    bad_doc = vllm_doc([0.1, 0.2], [[0.01], [0.02]], duration=11.0)
    bad_doc["ttfts"][0] = -1.0
    write_vllm("a/z-bad.json", bad_doc)
    with Warehouse(db) as wh:
        before = wh.counts()
        with pytest.raises(TraceFormatError, match=r"z-bad\.json"):
            api.ingest(wh, [good.parent], "dep")
        assert wh.counts() == before


def test_a_failure_during_the_write_rolls_back(db: Path, write_vllm, monkeypatch) -> None:
    a = write_vllm("a.json", vllm_doc([0.1], [[0.01]]))
    b = write_vllm("b.json", vllm_doc([0.2], [[0.02]], duration=3.0))
    with Warehouse(db) as wh:
        real = wh._insert_trace
        calls = []

        def flaky(trace, deployment, batch):
            calls.append(trace)
            if len(calls) == 2:
                raise RuntimeError("disk full")
            real(trace, deployment, batch)

        monkeypatch.setattr(wh, "_insert_trace", flaky)
        with pytest.raises(RuntimeError):
            api.ingest(wh, [a, b], "dep")
        assert wh.counts()["runs"] == 0 and wh.counts()["sources"] == 0


def test_provenance_is_kept(db: Path) -> None:
    with Warehouse(db) as wh:
        api.ingest(wh, [GOLDEN], "dep", attributes={"hardware": "1x H100", "simulated": True})
        run = wh.runs().row(0, named=True)
        dep = wh.deployments().row(0, named=True)
    assert run["source_path"] == str(GOLDEN)
    assert len(run["source_sha256"]) == 64 and run["tool"] == "vllm bench serve"
    assert run["request_rows"] == 6
    assert dep["hardware"] == "1x H100" and '"simulated": true' in dep["params"].replace(":", ": ")


def test_schema_version_is_recorded_and_checked(db: Path) -> None:
    Warehouse(db).close()
    con = duckdb.connect(str(db))
    assert con.execute("SELECT max(version) FROM schema_version").fetchall()[0][0] == (
        SCHEMA_VERSION
    )
    con.execute("INSERT INTO schema_version VALUES (?)", [SCHEMA_VERSION + 1])
    con.close()
    with pytest.raises(WarehouseError, match="newer than this loadlens"):
        Warehouse(db)


def test_reading_a_missing_warehouse_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(WarehouseError, match="loadlens ingest"):
        Warehouse(tmp_path / "nope.duckdb", read_only=True)


def test_ctrl_c_before_the_commit_stores_nothing_and_says_so(db: Path, monkeypatch) -> None:
    with Warehouse(db) as wh:

        def interrupted(trace, deployment, batch):
            raise KeyboardInterrupt

        monkeypatch.setattr(wh, "_insert_trace", interrupted)
        with pytest.raises(Interrupted) as caught:
            api.ingest(wh, [GOLDEN], "dep")
        assert caught.value.committed is False
        assert wh.counts()["runs"] == 0 and wh.counts()["deployments"] == 0


class _CommitInterrupted:
    """A connection whose commit receives Ctrl-C as it starts (as a user's Ctrl-C can)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def __getattr__(self, name: str):
        return getattr(self._con, name)

    def commit(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        self._con.commit()


def test_ctrl_c_during_the_commit_waits_for_it_and_says_it_was_stored(db: Path) -> None:
    with Warehouse(db) as wh:
        wh.con = _CommitInterrupted(wh.con)
        with pytest.raises(Interrupted) as caught:
            api.ingest(wh, [GOLDEN], "dep")
        assert caught.value.committed is True
        assert wh.counts()["requests"] == 6


def test_sigint_at_any_moment_of_an_ingest_stores_all_or_nothing_and_says_which(
    tmp_path: Path, write_vllm
) -> None:
    n = 150_000
    big = write_vllm("big.json", vllm_doc([0.05] * n, [[0.01, 0.01]] * n))
    exe = Path(sys.executable).with_name("loadlens")
    outcomes = set()
    for i, delay in enumerate((0.3, 0.8, 1.2, 1.6, 2.0, 2.5, 3.0, 4.0)):
        db = tmp_path / f"w{i}.duckdb"
        proc = subprocess.Popen(
            [str(exe), "--db", str(db), "ingest", str(big), "-d", "dep"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, errtext = proc.communicate(timeout=120)
        assert "Traceback" not in errtext, errtext
        stored = 0
        if db.exists():  # writable: an interrupt during its creation leaves no schema yet
            with Warehouse(db) as wh:
                stored = wh.counts()["requests"]
        assert stored in (0, n)
        if proc.returncode == 130:
            said_stored = "every row of it is stored" in errtext
            assert said_stored == (stored == n), errtext
            assert len(errtext.strip().splitlines()) == 1, errtext
            outcomes.add("stored" if stored else "rolled back")
        elif proc.returncode == -signal.SIGINT:
            # Ctrl-C before the interpreter had started our code (a loaded machine can
            # take that long to start Python): the default action, and nothing written.
            assert stored == 0 and not errtext.strip(), errtext
        else:
            assert proc.returncode == 0 and stored == n, errtext
            outcomes.add("finished")
    assert "rolled back" in outcomes or "stored" in outcomes


def test_a_statement_duckdb_cut_short_by_ctrl_c_is_an_interrupt_rolled_back(
    db: Path, monkeypatch
) -> None:
    with Warehouse(db) as wh:

        def cut_short(batch):
            raise RuntimeError("Query interrupted")  # as DuckDB reports SIGINT mid-statement

        monkeypatch.setattr(wh, "_write", cut_short)
        with pytest.raises(Interrupted) as caught:
            api.ingest(wh, [GOLDEN], "dep")
        assert caught.value.committed is False
        assert wh.counts()["runs"] == 0 and wh.counts()["deployments"] == 0
