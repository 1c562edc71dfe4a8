"""The audit trail: round trip of a real run, append-only, overrides, WAL, migrations, crash safety."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from app.audit.schema import LATEST
from app.audit.store import (
    AuditStore,
    AuditStoreError,
    UnknownRunError,
    persist,
    persist_quietly,
    record_run_from_dir,
)
from app.pipeline.record import RunRecord
from tests.audit.audit_records import FAKE_PATIENT, synthetic_record

REPO = Path(__file__).resolve().parents[2]


def _assert_same_images(a: RunRecord, b: RunRecord) -> None:
    assert b.slice_rgb is not None and np.array_equal(a.slice_rgb, b.slice_rgb)
    for ma, mb in zip(a.masks, b.masks, strict=True):
        assert mb.mask is not None and mb.mask.dtype == bool and np.array_equal(ma.mask, mb.mask)
    for ea, eb in zip(a.evidence, b.evidence, strict=True):
        assert len(ea.images) == len(eb.images)
        for ia, ib in zip(ea.images, eb.images):
            assert np.array_equal(ia, ib)


@pytest.mark.slow
def test_real_run_round_trips_with_images_and_patient(real_run, data_dir):
    record, patient = real_run
    with AuditStore() as store:
        assert store.path == data_dir / "audit.sqlite3"
        store.begin_run(record, patient=patient)
        assert [r.status for r in store.list_runs()] == ["running"]
        store.finish_run(record, patient=patient)
    with AuditStore() as store:  # a fresh connection reads what the first one committed
        loaded = store.load_run(record.run_id)
        assert loaded.record.to_dict() == record.to_dict()
        _assert_same_images(record, loaded.record)
        assert loaded.patient == patient and loaded.patient.name == "LUNG1^RESEARCH"
        assert loaded.overrides == []
        kinds = dict(store._query("SELECT name, kind FROM artifacts WHERE run_id = ?", (record.run_id,)))
        assert kinds["slice.png"] == "slice"
        assert {kinds[m.png] for m in record.masks} == {"mask"}
        assert kinds["evidence_crop.png"] == "evidence" and kinds["evidence_mask.png"] == "evidence"
        (summary,) = store.list_runs(record.input.study_uid)
        assert summary.status == "completed" and summary.final_answer == record.final_answer
        assert summary.slice_index == record.input.slice_index and summary.question == record.question


def test_update_and_delete_are_refused_by_triggers(data_dir):
    record = synthetic_record(1)
    with AuditStore() as store:
        store.begin_run(synthetic_record(2))  # an unfinished start row is immutable too
        store.finish_run(record, patient=FAKE_PATIENT)
        store.append_override(record.run_id, "note", {"note": "seen"})
        path = store.path
    conn = sqlite3.connect(path)  # a stray tool, not the API
    statements = [
        "UPDATE runs SET final_answer = 'No'",
        "DELETE FROM runs",
        "UPDATE artifacts SET png = x'00'",
        "DELETE FROM artifacts",
        "UPDATE overrides SET who = 'someone else'",
        "DELETE FROM overrides",
        "UPDATE run_starts SET question = 'other'",
        "DELETE FROM run_starts",
    ]
    for sql in statements:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(sql)
    conn.close()
    with AuditStore() as store:
        loaded = store.load_run(record.run_id)
        assert loaded.record.final_answer == "Yes" and len(loaded.overrides) == 1
        with pytest.raises(AuditStoreError, match="already recorded"):
            store.finish_run(record)  # the same run cannot be recorded twice


def test_overrides_are_appended_and_the_original_is_kept(data_dir):
    record = synthetic_record(3)
    with AuditStore() as store:
        store.finish_run(record)
        first = store.append_override(record.run_id, "final_answer",
                                      {"target": "final_answer", "old": "Yes", "new": "No", "note": "artefact"},
                                      who="dr.a")
        second = store.append_override(record.run_id, "mask_reject", {"target": "masks[0].accepted",
                                                                       "old": True, "new": False}, who="dr.b")
        assert (first.seq, second.seq) == (1, 2)
        loaded = store.load_run(record.run_id[:8])  # a unique prefix is enough
        assert loaded.record.final_answer == "Yes" and loaded.record.masks[0].accepted  # untouched
        assert [(o.kind, o.who, o.detail.get("new")) for o in loaded.overrides] == [
            ("final_answer", "dr.a", "No"), ("mask_reject", "dr.b", False)]
        as_record = loaded.overrides[0]  # one Override type: the row's target/old/new/author
        assert (as_record.target, as_record.old, as_record.new, as_record.author) == ("final_answer", "Yes", "No", "dr.a")
        assert store.list_runs()[0].overrides == 2
        with pytest.raises(UnknownRunError):
            store.append_override("no-such-run", "note", {})


def test_wal_mode_full_sync_and_foreign_keys(data_dir):
    with AuditStore() as store:
        store.finish_run(synthetic_record(4))
        assert store.journal_mode() == "wal"
        assert store._query("PRAGMA synchronous")[0][0] == 2  # FULL
        assert store._query("PRAGMA foreign_keys")[0][0] == 1
        assert Path(str(store.path) + "-wal").exists()
        with pytest.raises(sqlite3.IntegrityError):  # an artifact must belong to a finished run
            store._write(lambda c: c.execute(
                "INSERT INTO artifacts (run_id, name, kind, png, sha256) VALUES ('nope', 'x', 'slice', x'00', '')"))


def test_interrupted_runs_and_reasked_runs(data_dir):
    parent, child, crashed = synthetic_record(5), synthetic_record(6), synthetic_record(7)
    parent.created, crashed.created, child.created = (
        "2025-01-01T10:00:00.000+00:00", "2025-01-01T11:00:00.000+00:00", "2025-01-01T12:00:00.000+00:00")
    with AuditStore() as store:
        store.finish_run(parent)
        store.begin_run(crashed)  # this process "dies" before finish_run
        store.finish_run(child, parent_run_id=parent.run_id)
    with AuditStore() as store:  # a new session: the crashed run's owner is gone
        runs = store.list_runs()
        assert [r.run_id for r in runs] == [child.run_id, crashed.run_id, parent.run_id]  # newest first
        assert [r.status for r in runs] == ["completed", "interrupted", "completed"]
        assert runs[0].parent_run_id == parent.run_id
        assert [r.run_id for r in store.interrupted_runs()] == [crashed.run_id]
        with pytest.raises(UnknownRunError, match="interrupted"):
            store.load_run(crashed.run_id)
        assert store.load_run(child.run_id).parent_run_id == parent.run_id
        assert [r.run_id for r in store.list_runs(parent.input.study_uid)] == [parent.run_id]
        with pytest.raises(UnknownRunError):
            store.load_run("ffffffff-no-such-run")


def test_schema_versioning(tmp_path):
    db = tmp_path / "a.sqlite3"
    with AuditStore(db) as store:
        assert store.schema_version == LATEST
    with AuditStore(db) as store:  # reopening migrates nothing twice
        assert store._query("SELECT COUNT(*) FROM schema_version")[0][0] == LATEST
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO schema_version VALUES (?, 'future')", (LATEST + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(AuditStoreError, match="newer than this app"):  # one-line message, not a traceback
        AuditStore(db)
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(AuditStoreError, match="garbage.sqlite3"):
        AuditStore(garbage)


def test_persist_helpers(tmp_path, data_dir):
    from app.pipeline.run_io import write_run

    record = synthetic_record(8)
    write_run(record, tmp_path / "run")
    run_id = record_run_from_dir(tmp_path / "run", patient=FAKE_PATIENT)
    with AuditStore() as store:
        loaded = store.load_run(run_id)
    assert loaded.record.to_dict() == record.to_dict() and loaded.patient == FAKE_PATIENT
    _assert_same_images(record, loaded.record)
    assert persist(synthetic_record(9)) and persist_quietly(synthetic_record(10)) is None
    assert "already recorded" in persist_quietly(record)
    with pytest.raises(AuditStoreError, match="not a readable run folder"):
        record_run_from_dir(tmp_path / "missing")


# ---------------------------------------------------------------------------------------
# Crash safety: a writer killed with SIGKILL never damages earlier runs
# ---------------------------------------------------------------------------------------
WRITER = textwrap.dedent(
    """
    import sys, time
    from app.audit.store import AuditStore
    from tests.audit.audit_records import synthetic_record

    db, mode = sys.argv[1], sys.argv[2]
    store = AuditStore(db)
    store._conn.execute("PRAGMA cache_size = 8")  # spill dirty pages into the WAL mid-transaction
    for seed in range(10_000):
        record = synthetic_record(seed, size=192)
        store.begin_run(record)
        if mode == "mid" and seed == 4:
            # Block inside finish_run's transaction, after some rows were written.
            # (finish_run of this record runs ~340 VM steps inside its transaction.)
            calls = [0]
            def stall():
                if store._conn.in_transaction:
                    calls[0] += 1
                    if calls[0] == 250:
                        print("MID", record.run_id, flush=True)
                        time.sleep(600)
                return 0
            store._conn.set_progress_handler(stall, 1)
        store.finish_run(record)
        print("DONE", record.run_id, flush=True)
    """
)


def _run_writer(db: Path, mode: str, kill_after: int) -> tuple[list[str], str | None]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db), mode], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
    done, mid = [], None
    try:
        for line in proc.stdout:
            tag, run_id = line.split()
            if tag == "MID":
                mid = run_id
                break
            done.append(run_id)
            if len(done) >= kill_after:
                break  # the writer is already busy with the next run
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    return done, mid


@pytest.mark.parametrize("mode", ["loop", "mid"])
def test_sigkill_during_writes_keeps_earlier_runs(tmp_path, mode):
    db = tmp_path / "audit.sqlite3"
    done, mid = _run_writer(db, mode, kill_after=6)
    assert len(done) >= (4 if mode == "mid" else 6)
    if mode == "mid":
        assert mid is not None
        assert os.path.getsize(str(db) + "-wal") > 0  # the killed transaction left pages behind
    with AuditStore(db) as store:
        assert store.integrity_check() == "ok"
        summaries = {r.run_id: r for r in store.list_runs()}
        for seed, run_id in enumerate(done):
            loaded = store.load_run(run_id)  # sha256-checked record and artifacts
            expected = synthetic_record(seed, size=192)
            assert loaded.record.question == expected.question
            assert np.array_equal(loaded.record.slice_rgb, expected.slice_rgb)
            assert np.array_equal(loaded.record.masks[0].mask, expected.masks[0].mask)
            assert summaries[run_id].status == "completed"
        unfinished = [r for r in summaries.values() if r.run_id not in done]
        # At most the one run being written when the kill came; it is finished or interrupted, never half.
        assert len(unfinished) <= 1
        for r in unfinished:
            assert r.status in ("completed", "interrupted")
            if r.status == "completed":
                assert store.load_run(r.run_id).record.slice_rgb is not None
        if mode == "mid":
            assert summaries[mid].status == "interrupted"
            assert [r.run_id for r in store.interrupted_runs()] == [mid]
            assert store._query("SELECT COUNT(*) FROM artifacts WHERE run_id = ?", (mid,))[0][0] == 0
        # The database stays writable after the crash.
        store.finish_run(synthetic_record(99, size=64))
        assert store.integrity_check() == "ok"


def test_a_record_without_its_slice_gets_it_from_the_verified_source(data_dir, ct_dicom_dir):
    import hashlib

    from app.study.display import slice_rgb
    from app.study.loader import load
    from app.study.volume import Window

    source = sorted(p for p in ct_dicom_dir.iterdir() if p.is_file())[0]
    volume = load([source]).volumes[0]
    record = synthetic_record(20)
    record.slice_rgb, record.masks, record.evidence = None, [], []
    record.input.source_path, record.input.series_uid = str(source), volume.series_uid
    record.input.slice_index, record.input.num_slices = 0, 1
    record.input.pixel_sha256 = hashlib.sha256(volume.slice(0).tobytes()).hexdigest()
    with AuditStore() as store:
        store.finish_run(record)
        stored = store.load_run(record.run_id).record.slice_rgb
    assert np.array_equal(stored, slice_rgb(volume, 0, Window(-600.0, 1500.0)))
