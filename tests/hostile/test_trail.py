"""Issue 14 item 2, the audit trail under attack: damaged, unwritable and full databases, tampered
records, kill -9 at several points of a CLI run, full disks while writing outputs, and no silent
overwrite. Every CLI case asserts the exit code, a one-line message naming the file and the
reason, and no traceback. Inputs are the shared CT and files the tests write into tmp_path.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import resource
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.audit.store import AuditStore, AuditStoreError
from app.cli.main import main
from tests.audit.audit_records import FAKE_PATIENT, synthetic_record

REPO = Path(__file__).resolve().parents[2]
TOKENS = ["--max-new-tokens", "8"]


# ----- helpers ------------------------------------------------------------------------------
def run_cli(*argv: str, limit_file_bytes: int | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    """``python -m app ARGV`` in a child with this test's isolated environment (not the shared
    launcher of tests/hostile/conftest.py: that one captures output into files, which a file-size
    limit would cut short; pipes are not limited). With
    ``limit_file_bytes`` the child may not write any file past that size (RLIMIT_FSIZE: the
    kernel answers EFBIG, as a full disk answers ENOSPC), SIGXFSZ ignored so it sees the error."""

    def limits() -> None:
        if limit_file_bytes is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_bytes, limit_file_bytes))

    return subprocess.run([sys.executable, "-m", "app", *argv], cwd=str(REPO), env=dict(os.environ),
                          capture_output=True, text=True, timeout=timeout, preexec_fn=limits)


def one_line_error(stderr: str, *needles: str) -> str:
    """The single ``error:`` line of ``stderr``; asserts no traceback and that it names ``needles``."""
    assert "Traceback" not in stderr, stderr
    lines = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def sha_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def db_path() -> Path:
    return Path(os.environ["CARE_DATA_DIR"]) / "audit.sqlite3"


def stored_runs(n: int = 3) -> list:
    records = [synthetic_record(40 + i, question=f"Question {i}?") for i in range(n)]
    with AuditStore() as store:
        for r in records:
            store.finish_run(r, patient=FAKE_PATIENT)
        store.append_override(records[0].run_id, "final_answer", {"old": "Yes", "new": "No"}, who="dr.x")
    return records


def attacker() -> sqlite3.Connection:
    """A plain sqlite3 connection to the trail, as someone with the file would open it."""
    return sqlite3.connect(str(db_path()), isolation_level=None)


@pytest.fixture()
def small_png(tmp_path) -> Path:
    """A 64x64 greyscale image with a bright square: a valid 2D input for ask/segment."""
    img = np.zeros((64, 64), np.uint8)
    img[20:44, 20:44] = 200
    path = tmp_path / "study.png"
    assert cv2.imwrite(str(path), img)
    return path


# ----- damaged databases --------------------------------------------------------------------
def _damage_zero(path: Path) -> None:
    path.write_bytes(b"")


def _damage_not_sqlite(path: Path) -> None:
    path.write_bytes(b"this is a text file, not the audit trail\n" * 100)


def _damage_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid - 2048: mid + 2048] = os.urandom(4096)  # the middle pages, headers and pointers included
    path.write_bytes(bytes(data))


def _damage_truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


DAMAGES = {"zero-length": _damage_zero, "not-sqlite": _damage_not_sqlite, "overwritten-middle": _damage_middle,
           "truncated-half": _damage_truncated}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_database_is_refused_reported_and_kept_byte_identical(damage, small_png, tmp_path):
    stored_runs(6)  # several pages, so the middle is inside the tables
    path = db_path()
    DAMAGES[damage](path)
    before = sha_of(path)

    r = run_cli("history")
    assert r.returncode == 2
    one_line_error(r.stderr, str(path), "damaged", "left untouched")

    # ask refuses before any model runs (no profile weights are even needed) and writes nothing
    out = tmp_path / "run"
    r = run_cli("ask", str(small_png), "-q", "Is there a mass?", "--profile", "tiny", "--out", str(out))
    assert r.returncode == 5
    one_line_error(r.stderr, str(path), "damaged", "no run was started")
    assert not out.exists()

    r = run_cli("history", "--verify")
    assert r.returncode == 2 and "damaged" in r.stderr and "Traceback" not in r.stderr
    with pytest.raises(AuditStoreError, match="damaged"):
        AuditStore()
    assert sha_of(path) == before  # kept for forensics, never re-initialised


def test_gui_run_refuses_on_a_damaged_trail(tiny_pipeline_factory, ct_volume, tmp_path):
    """The GUI's worker body: no run, an 'audit' outcome naming the file, and the file untouched."""
    import threading

    from app.ui.run_worker import PipelineCache, RunRequest, run_task

    stored_runs(2)
    _damage_middle(db_path())
    before = sha_of(db_path())
    cache = PipelineCache()
    cache.put("tiny", tiny_pipeline_factory(8))
    request = RunRequest(ct_volume, 30, "Is there a mass?", "tiny")
    outcome = run_task(request, cache, AuditStore, threading.Event(), lambda p: None)
    assert outcome.record is None and outcome.error_kind == "audit"
    assert str(db_path()) in outcome.error and "damaged" in outcome.error
    assert sha_of(db_path()) == before


# ----- unwritable and full trails -----------------------------------------------------------
def test_unwritable_trail_refuses_ask_before_running(small_png, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data folder should be")
    monkeypatch.setenv("CARE_DATA_DIR", str(blocker / "care"))
    out = tmp_path / "run"
    r = run_cli("ask", str(small_png), "-q", "Is there a mass?", "--profile", "tiny", "--out", str(out))
    assert r.returncode == 5
    one_line_error(r.stderr, str(blocker / "care" / "audit.sqlite3"), "cannot create", "no run was started")
    assert not out.exists()


def test_trail_that_cannot_grow_refuses_ask_at_open(small_png, tmp_path):
    """No file may grow past 1 kB: SQLite cannot even create its shared-memory index."""
    stored_runs(1)
    before = sha_of(db_path())
    out = tmp_path / "run"
    r = run_cli("ask", str(small_png), "-q", "Is there a mass?", "--profile", "tiny", "--out", str(out),
                *TOKENS, limit_file_bytes=1024)
    assert r.returncode == 5, r.stderr
    line = one_line_error(r.stderr, str(db_path()), "cannot open the audit database", "no run was started")
    assert "damaged" not in line  # an I/O error is not damage
    assert not out.exists() and sha_of(db_path()) == before
    with AuditStore() as store:  # the refused run exists nowhere, the trail is intact
        assert len(store.list_runs()) == 1 and store.verify().ok


def test_full_trail_refuses_ask_before_any_model_runs(small_png, tmp_path):
    """The trail is open elsewhere (the GUI), so its WAL exists; the child may not grow any file,
    so committing the start row fails as on a full disk, and the run never starts."""
    with AuditStore() as holder:
        holder.finish_run(synthetic_record(60), patient=FAKE_PATIENT)
        wal = Path(str(db_path()) + "-wal")
        assert wal.stat().st_size > 8192
        out = tmp_path / "run"
        r = run_cli("ask", str(small_png), "-q", "Is there a mass?", "--profile", "tiny", "--out", str(out),
                    *TOKENS, limit_file_bytes=wal.stat().st_size)
        assert r.returncode == 5, r.stderr
        one_line_error(r.stderr, str(db_path()), "cannot write the audit database", "no model was run")
        assert "%]" not in r.stderr  # no stage progressed
        assert not out.exists()
        assert len(holder.list_runs()) == 1 and holder.verify().ok


# ----- tamper evidence ----------------------------------------------------------------------
def _verify_cli(capsys) -> tuple[int, str, str]:
    code = main(["history", "--verify"])
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err
    return code, cap.out, cap.err


def test_intact_trail_verifies(capsys):
    stored_runs(3)
    code, out, _ = _verify_cli(capsys)
    assert code == 0 and "audit trail intact: 3 run(s), 1 override(s)" in out and "chain head" in out


def test_edited_record_json_is_named_by_verify(capsys):
    records = stored_runs(3)
    victim = records[1]
    c = attacker()
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        c.execute("UPDATE runs SET final_answer = 'No' WHERE run_id = ?", (victim.run_id,))
    # as an attacker would: drop the trigger, rewrite the answer in the record, recreate it
    sql = c.execute("SELECT sql FROM sqlite_master WHERE name = 'runs_no_update'").fetchone()[0]
    c.execute("PRAGMA recursive_triggers = OFF")
    c.execute("DROP TRIGGER runs_no_update")
    c.execute("UPDATE runs SET record_json = replace(record_json, '\"final_answer\": \"Yes\"', "
              "'\"final_answer\": \"No\"') WHERE run_id = ?", (victim.run_id,))
    c.execute(sql)
    c.close()
    code, out, _ = _verify_cli(capsys)
    assert code == 1
    failed = [ln for ln in out.splitlines() if ln.startswith("FAILED")]
    assert failed == [f"FAILED run {victim.run_id}: the stored record does not match its record_sha256"]


def test_rehashed_record_is_caught_by_the_chain(capsys):
    records = stored_runs(3)
    victim = records[2]
    c = attacker()
    c.execute("DROP TRIGGER runs_no_update")
    row = c.execute("SELECT record_json FROM runs WHERE run_id = ?", (victim.run_id,)).fetchone()[0]
    forged = row.replace("Question 2?", "Question two?")
    c.execute("UPDATE runs SET record_json = ?, record_sha256 = ? WHERE run_id = ?",
              (forged, hashlib.sha256(forged.encode()).hexdigest(), victim.run_id))
    c.close()
    code, out, _ = _verify_cli(capsys)
    assert code == 1
    assert f"FAILED run {victim.run_id}: the stored run (record, status, answer or artifacts) differs" in out
    assert "protective trigger runs_no_update is missing" in out
    with AuditStore() as store:  # the reader still works; the record it returns is the forged one
        assert store.load_run(victim.run_id).record.question == "Question two?"


def test_insert_or_replace_is_refused_and_a_forced_one_is_named(capsys):
    records = stored_runs(2)
    victim = records[0]
    png = cv2.imencode(".png", np.zeros((8, 8), np.uint8))[1].tobytes()
    c = attacker()
    for sql, params in (
        ("INSERT OR REPLACE INTO artifacts (run_id, name, kind, png, sha256) VALUES (?, 'slice.png', 'slice', ?, ?)",
         (victim.run_id, png, hashlib.sha256(png).hexdigest())),
        ("INSERT OR REPLACE INTO runs (run_id, finished, status, final_answer, record_json, record_sha256) "
         "VALUES (?, 'x', 'completed', 'No', '{}', 'x')", (victim.run_id,)),
        ("INSERT OR REPLACE INTO schema_version (version, applied) VALUES (1, 'x')", ()),
        ("UPDATE schema_version SET version = 99", ()),
        ("DELETE FROM chain", ()),
    ):
        with pytest.raises(sqlite3.IntegrityError):
            c.execute(sql, params)
    c.execute("INSERT OR REPLACE INTO run_starts (run_id, created, question) VALUES (?, 'x', 'forged?')",
              (victim.run_id,))  # ignored: the start row keeps its question
    question = c.execute("SELECT question FROM run_starts WHERE run_id = ?", (victim.run_id,)).fetchone()[0]
    assert question == "Question 0?"
    # dropping the guard lets REPLACE through, but the chain names the run
    c.execute("DROP TRIGGER artifacts_no_replace")
    c.execute("INSERT OR REPLACE INTO artifacts (run_id, name, kind, png, sha256) "
              "VALUES (?, 'slice.png', 'slice', ?, ?)", (victim.run_id, png, hashlib.sha256(png).hexdigest()))
    c.close()
    code, out, _ = _verify_cli(capsys)
    assert code == 1 and f"FAILED run {victim.run_id}: the stored run" in out
    assert records[1].run_id not in out


def test_deleted_override_and_inserted_run_are_named(capsys):
    records = stored_runs(2)
    c = attacker()
    c.execute("DROP TRIGGER overrides_no_delete")
    c.execute("DELETE FROM overrides WHERE run_id = ?", (records[0].run_id,))
    c.execute("INSERT INTO run_starts (run_id, created, question) VALUES ('forged-run', 'x', 'q')")
    c.execute("INSERT INTO runs (run_id, finished, status, final_answer, record_json, record_sha256) "
              "VALUES ('forged-run', 'x', 'completed', 'No', '{}', ?)", (hashlib.sha256(b"{}").hexdigest(),))
    c.close()
    code, out, _ = _verify_cli(capsys)
    assert code == 1
    assert f"FAILED run {records[0].run_id}: override 1 differs from the chain" in out
    assert "FAILED run forged-run: the run is not in the chain" in out


def test_version_1_database_is_migrated_and_chained_once(tmp_path, capsys):
    """A trail written before the chain existed: opened, chained once (start row says when and how
    many), verified, and its old runs still load."""
    from app.audit import schema
    from app.audit.artifacts import encode_png

    record = synthetic_record(77)
    record_json = json.dumps(record.to_dict(), ensure_ascii=False, sort_keys=True)
    png = encode_png(np.zeros((8, 8, 3), np.uint8))
    db_path().parent.mkdir(parents=True)
    c = attacker()
    c.execute("PRAGMA journal_mode = WAL")
    c.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied TEXT NOT NULL)")
    for statement in schema._statements(schema.MIGRATIONS[0][1]):
        c.execute(statement)
    c.execute("INSERT INTO schema_version VALUES (1, '2025-01-01T00:00:00+00:00')")
    c.execute("INSERT INTO run_starts (run_id, created, question) VALUES (?, ?, ?)",
              (record.run_id, record.created, record.question))
    c.execute("INSERT INTO runs VALUES (?, ?, 'completed', 'Yes', ?, ?)",
              (record.run_id, record.finished, record_json, hashlib.sha256(record_json.encode()).hexdigest()))
    c.execute("INSERT INTO artifacts VALUES (?, 'slice.png', 'slice', ?, ?)",
              (record.run_id, png, hashlib.sha256(png).hexdigest()))
    c.execute("INSERT INTO overrides VALUES (?, 1, '2025-01-02T00:00:00+00:00', 'final_answer', '{}', 'dr.y')",
              (record.run_id,))
    c.close()

    with AuditStore() as store:
        assert store.schema_version == schema.LATEST
        assert store.load_run(record.run_id).record.question == record.question
        report = store.verify()
        assert report.ok and report.runs == 1 and report.overrides == 1 and report.chain_started
        store.finish_run(synthetic_record(78))
    note = attacker().execute("SELECT note FROM chain WHERE kind = 'start'").fetchone()[0]
    assert "1 run(s) and 1 override(s) recorded earlier" in note and "not tamper-evident before" in note
    code, out, _ = _verify_cli(capsys)
    assert code == 0 and "2 run(s)" in out and "chained since" in out


# ----- kill -9 at several points of a CLI run -----------------------------------------------
def _history_json() -> list[dict]:
    r = run_cli("history", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _assert_trail_sound(expected_status: str) -> None:
    runs = _history_json()
    assert [r["status"] for r in runs] == [expected_status], runs
    r = run_cli("history", "--verify")
    assert r.returncode == 0 and "audit trail intact" in r.stdout, r.stdout + r.stderr


def _start_rows() -> int:
    if not db_path().exists():
        return 0
    try:
        c = sqlite3.connect(str(db_path()), timeout=1)
        try:
            return int(c.execute("SELECT COUNT(*) FROM run_starts").fetchone()[0])
        finally:
            c.close()
    except sqlite3.Error:  # the child is still creating the schema
        return 0


@pytest.mark.slow
@pytest.mark.parametrize("point", ["after-start-row", "during-models"])
def test_kill_9_during_a_cli_ask_leaves_an_interrupted_run(point, tiny_models_dir, ct_dicom_dir, tmp_path):
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "app", "ask", str(ct_dicom_dir), "-q", "Is there a mass?", "--profile", "tiny",
            "--slice", "30", "--out", str(out), *TOKENS]
    stderr_path = tmp_path / "stderr.txt"
    with open(stderr_path, "w") as err:
        child = subprocess.Popen(argv, cwd=str(REPO), env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 180
        try:
            while time.monotonic() < deadline and child.poll() is None:
                if point == "after-start-row" and _start_rows():
                    break
                if point == "during-models" and "masks:" in stderr_path.read_text():
                    break
                time.sleep(0.02)
            assert child.poll() is None, f"the run ended before the kill point: {stderr_path.read_text()}"
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.wait(30)
    assert child.returncode == -signal.SIGKILL
    assert not out.exists()  # no run folder that looks complete
    _assert_trail_sound("interrupted")


_KILL_IN_FINISH = """
import os, signal
from app.audit import chain, store as store_mod
from tests.audit.audit_records import synthetic_record
record = synthetic_record(91)
s = store_mod.AuditStore()
s.begin_run(record)
def killed(*a, **k):  # the runs row and its artifacts are inserted, COMMIT is not reached
    os.kill(os.getpid(), signal.SIGKILL)
chain.append = killed
s.finish_run(record)
"""


def test_kill_9_inside_finish_run_rolls_back_to_interrupted(tmp_path):
    r = subprocess.run([sys.executable, "-c", _KILL_IN_FINISH], cwd=str(REPO), env=dict(os.environ),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == -signal.SIGKILL, r.stderr
    _assert_trail_sound("interrupted")
    with AuditStore() as store:
        assert store.integrity_check() == "ok"


_ASK_KILLED_IN_FINISH = """
import os, signal, sys
from app.audit import chain
from app.cli.main import main
def killed(*a, **k):  # inside finish_run's transaction: runs row and artifacts inserted, no COMMIT
    os.kill(os.getpid(), signal.SIGKILL)
chain.append = killed
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_kill_9_while_a_cli_ask_finishes_leaves_an_interrupted_run(tiny_models_dir, ct_dicom_dir, tmp_path):
    AuditStore().close()  # an existing trail (creating one chains its start row, which would be killed)
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-c", _ASK_KILLED_IN_FINISH, "ask", str(ct_dicom_dir), "-q", "Is there a mass?",
                        "--profile", "tiny", "--slice", "30", "--out", str(out), *TOKENS],
                       cwd=str(REPO), env=dict(os.environ), capture_output=True, text=True, timeout=240)
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert (out / "run.json").is_file()  # the folder was complete before the trail's finish began
    _assert_trail_sound("interrupted")


# ----- full disks and partial files ---------------------------------------------------------
def _enospc_after(monkeypatch, allowed: int = 100) -> None:
    """Regular files (not stdout/stderr) take ``allowed`` bytes, then the disk is 'full'."""
    real_write = os.write
    budget = {"left": allowed}

    def write(fd: int, data) -> int:
        if fd > 2 and stat.S_ISREG(os.fstat(fd).st_mode):
            if budget["left"] <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            n = min(len(data), budget["left"])
            budget["left"] -= n
            return real_write(fd, bytes(data[:n]))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial-" in p.name)


def test_segment_on_a_full_disk_leaves_no_mask(small_png, tmp_path, monkeypatch, capsys):
    out_dir = tmp_path / "masks"
    out_dir.mkdir()
    out = out_dir / "mask.png"
    _enospc_after(monkeypatch)
    code = main(["segment", str(small_png), "--slice", "0", "--box", "16,16,48,48", "--out", str(out)])
    assert code == 1
    one_line_error(capsys.readouterr().err, str(out), "No space left on device", "no partial file")
    assert not out.exists() and _leftovers(out_dir) == []


def test_segment_past_the_file_size_limit_in_a_child(small_png, tmp_path):
    """The kernel refusing the write (EFBIG) in a real process, not a monkeypatch."""
    out = tmp_path / "mask.png"
    r = run_cli("segment", str(small_png), "--slice", "0", "--box", "16,16,48,48", "--out", str(out),
                limit_file_bytes=64)
    assert r.returncode == 1, r.stderr
    one_line_error(r.stderr, str(out), "File too large", "no partial file")
    assert not out.exists() and _leftovers(tmp_path) == []


def test_segment_on_a_real_full_tmpfs(small_png, tmp_path):
    mnt = tmp_path / "tiny-fs"
    mnt.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], check=True,
                       capture_output=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot mount a 64 kB tmpfs here (needs root and mount rights): {exc}")
    try:
        filler = mnt / "filler"
        with open(filler, "wb", buffering=0) as fh:  # fill it to the last byte
            for chunk in (4096, 1):
                try:
                    while True:
                        fh.write(b"\0" * chunk)
                except OSError:
                    pass
        out = mnt / "mask.png"
        r = run_cli("segment", str(small_png), "--slice", "0", "--box", "16,16,48,48", "--out", str(out))
        assert r.returncode == 1, r.stderr
        one_line_error(r.stderr, str(out), "No space left on device")
        assert not out.exists() and _leftovers(mnt) == []
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True, timeout=20)


def test_eval_on_a_full_disk_leaves_no_eval_json(shared_data, tmp_path, monkeypatch, capsys):
    ct = shared_data / "ct-chest-lung1"
    dataset = tmp_path / "seg.json"
    dataset.write_text(json.dumps([{"image": str(ct / "lung1_image.nrrd"), "label": str(ct / "lung1_label.nrrd")}]))
    out = tmp_path / "eval"
    out.mkdir()
    _enospc_after(monkeypatch, allowed=50)
    code = main(["eval", str(dataset), "--seg", "--profile", "tiny", "--out", str(out)])
    assert code == 2
    one_line_error(capsys.readouterr().err, str(out / "eval.json"), "No space left on device", "no partial file")
    assert list(out.iterdir()) == []


@pytest.mark.slow
def test_ask_on_a_full_disk_leaves_no_run_folder_and_records_the_run(tiny_models_dir, ct_dicom_dir, tmp_path,
                                                                    capsys):
    out = tmp_path / "run"
    with pytest.MonkeyPatch.context() as mp:  # only os.write; the isolated data dir stays
        _enospc_after(mp, allowed=1000)
        code = main(["ask", str(ct_dicom_dir), "-q", "Is there a mass?", "--profile", "tiny", "--slice", "30",
                     "--out", str(out), *TOKENS])
    assert code == 2
    one_line_error(capsys.readouterr().err, str(out), "No space left on device", "nothing partial")
    assert not out.exists() and _leftovers(tmp_path) == []
    with AuditStore() as store:  # SQLite writes are not Python os.write calls: the trail has the run
        (run,) = store.list_runs()
        assert run.status == "completed" and store.verify().ok


# ----- no silent overwrite ------------------------------------------------------------------
def test_ask_refuses_a_non_empty_out_folder_before_running(small_png, tmp_path, capsys):
    out = tmp_path / "earlier-run"
    out.mkdir()
    (out / "run.json").write_text("{}")
    code = main(["ask", str(small_png), "-q", "Is there a mass?", "--profile", "tiny", "--out", str(out)])
    assert code == 1
    one_line_error(capsys.readouterr().err, str(out), "not empty", "--force")
    assert (out / "run.json").read_text() == "{}"
    assert not db_path().exists()  # refused before the trail was even opened


@pytest.mark.slow
def test_ask_force_replaces_the_run_folder(tiny_models_dir, ct_dicom_dir, tmp_path, capsys):
    out = tmp_path / "earlier-run"
    out.mkdir()
    (out / "run.json").write_text("{}")
    code = main(["ask", str(ct_dicom_dir), "-q", "Is there a mass?", "--profile", "tiny", "--slice", "30",
                 "--out", str(out), "--force", *TOKENS])
    assert code == 0, capsys.readouterr().err
    record = json.loads((out / "run.json").read_text())
    assert record["question"] == "Is there a mass?" and (out / "slice.png").is_file()
    assert _leftovers(out) == [] and _leftovers(tmp_path) == []


def test_report_refuses_an_existing_file_unless_forced(tmp_path, capsys):
    (record,) = stored_runs(1)[:1]
    out = tmp_path / "report.pdf"
    out.write_bytes(b"%PDF-1.4 signed-off report")
    code = main(["report", record.run_id, "--out", str(out)])
    assert code == 1
    one_line_error(capsys.readouterr().err, str(out), "exists", "--force")
    assert out.read_bytes() == b"%PDF-1.4 signed-off report"
    assert main(["report", record.run_id, "--out", str(out), "--force"]) == 0
    assert out.read_bytes().startswith(b"%PDF") and out.stat().st_size > 1000
    assert [p.name for p in tmp_path.iterdir()] == ["report.pdf"]


def test_edited_artifact_bytes_are_named(capsys):
    records = stored_runs(2)
    c = attacker()
    c.execute("DROP TRIGGER artifacts_no_update")
    c.execute("UPDATE artifacts SET png = substr(png, 1, 40) || zeroblob(8) WHERE run_id = ? AND name = 'slice.png'",
              (records[1].run_id,))
    c.close()
    code, out, _ = _verify_cli(capsys)
    assert code == 1
    assert f"FAILED run {records[1].run_id}: artifact slice.png does not match its sha256" in out
    assert records[0].run_id not in out


def test_new_trail_is_never_the_empty_file_sqlite_creates_first(tmp_path):
    """Creation happens under a temporary name and is linked into place complete, so a zero-length
    file at the trail's path can only be damage (and two creators share one database)."""
    from app.audit import db_open

    with AuditStore() as a, AuditStore() as b:
        assert a.schema_version == b.schema_version
        record = synthetic_record(55)
        a.finish_run(record)
        assert [r.run_id for r in b.list_runs()] == [record.run_id]
    assert db_path().read_bytes()[:16] == db_open.SQLITE_HEADER
    assert sorted(p.name for p in db_path().parent.iterdir()) == ["audit.sqlite3"]


def test_report_past_the_file_size_limit_leaves_no_pdf(tmp_path):
    from app.pipeline.run_io import write_run

    folder = tmp_path / "run"
    write_run(synthetic_record(66), folder)
    out = tmp_path / "report.pdf"
    r = run_cli("report", str(folder), "--out", str(out), limit_file_bytes=4096)
    assert r.returncode == 2, r.stderr
    one_line_error(r.stderr, str(out), "cannot write the report", "File too large")
    assert not out.exists() and not list(tmp_path.glob("report.pdf*"))


def test_kill_9_while_creating_the_trail_leaves_nothing_that_blocks_the_next_open(tmp_path):
    script = ("import os, signal\nfrom app.audit import chain, store\n"
              "chain.append = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)\nstore.AuditStore()\n")
    r = subprocess.run([sys.executable, "-c", script], cwd=str(REPO), env=dict(os.environ), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert not db_path().exists()  # the half-made database never had the trail's name
    assert any(p.name.startswith(".audit.sqlite3.new-") for p in db_path().parent.iterdir())
    with AuditStore() as store:
        assert store.list_runs() == [] and store.verify().ok
    assert sorted(p.name for p in db_path().parent.iterdir()) == ["audit.sqlite3"]
