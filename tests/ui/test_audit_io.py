"""The audit trail off the GUI thread: the headless service, the serial Qt queue in front of
it, and the real window never touching SQLite from its main thread."""
from __future__ import annotations

import threading

import pytest

from app.audit.service import AuditService, AuditUnavailable
from app.audit.store import AuditStore
from tests.ui.care_session import QUESTION, TUMOUR_BOX, settle


class RecordingStore(AuditStore):
    """The real store, noting which thread made each call."""

    calls: list[tuple[str, threading.Thread]] = []

    def __init__(self, *args, **kwargs) -> None:
        RecordingStore.calls.append(("open", threading.current_thread()))
        super().__init__(*args, **kwargs)

    def _note(self, name: str) -> None:
        RecordingStore.calls.append((name, threading.current_thread()))

    def list_runs(self, *a, **k):
        self._note("list_runs")
        return super().list_runs(*a, **k)

    def load_run(self, *a, **k):
        self._note("load_run")
        return super().load_run(*a, **k)

    def append_override(self, *a, **k):
        self._note("append_override")
        return super().append_override(*a, **k)

    def overrides(self, *a, **k):
        self._note("overrides")
        return super().overrides(*a, **k)

    def begin_run(self, *a, **k):
        self._note("begin_run")
        return super().begin_run(*a, **k)

    def finish_run(self, *a, **k):
        self._note("finish_run")
        return super().finish_run(*a, **k)


def test_service_opens_lazily_and_reports_an_unopenable_store(tmp_path):
    opened = []

    def factory():
        opened.append(1)
        return AuditStore(tmp_path / "audit.sqlite3")

    service = AuditService(factory)
    assert not service.is_open and not opened  # constructing it creates no database
    assert service.list_runs() == []
    assert service.is_open and service.store() is service.store() and len(opened) == 1
    service.close()
    assert not service.is_open

    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    bad = AuditService(lambda: AuditStore(blocked / "audit.sqlite3"))
    with pytest.raises(AuditUnavailable, match="cannot create the audit database"):
        bad.list_runs()


def test_worker_keeps_the_order_and_delivers_failures(qtbot, tmp_path):
    from app.ui.audit_worker import AuditWorker

    io = AuditWorker(AuditService(lambda: AuditStore(tmp_path / "audit.sqlite3")))
    main = threading.current_thread()
    seen: list[tuple[str, object]] = []
    threads: list[threading.Thread] = []

    def call(tag):
        def run(service):
            threads.append(threading.current_thread())
            return tag
        return run

    for i in range(20):
        io.submit(call(i), lambda v: seen.append(("ok", v)))
    io.submit(lambda s: s.load_run("nope"), lambda v: seen.append(("ok", v)), lambda f: seen.append(("err", f)))
    assert not io.idle
    qtbot.waitUntil(lambda: io.idle, timeout=10_000)
    assert [v for k, v in seen[:20]] == list(range(20))  # submitted order = run and delivery order
    kind, failure = seen[20]
    assert kind == "err" and not failure.unavailable and "nope" in failure.message
    assert threads and all(t is not main for t in threads) and len({t.ident for t in threads}) == 1
    io.shutdown()
    assert not io.service.is_open
    assert io.submit(lambda s: s.list_runs()) is None and not io.service.is_open  # closed: no reopening

    blocked = tmp_path / "file"
    blocked.write_text("x")
    bad = AuditWorker(AuditService(lambda: AuditStore(blocked / "audit.sqlite3")))
    got = []
    bad.submit(lambda s: s.list_runs(), got.append, got.append)
    qtbot.waitUntil(lambda: bad.idle, timeout=10_000)
    assert got and got[0].unavailable and "audit database" in got[0].message


@pytest.mark.slow
def test_the_window_never_touches_the_audit_store_on_its_main_thread(qtbot, care):
    RecordingStore.calls = []
    care.audit_io.service.close()
    care.audit_io.service = AuditService(RecordingStore)

    with qtbot.waitSignal(care.run_finished, timeout=120_000) as sig:  # opens the store
        care.start_run(QUESTION, "tiny", boxes=[TUMOUR_BOX])
    rec = sig.args[0].record
    assert rec.status == "completed" and sig.args[0].persisted
    settle(qtbot, care)
    assert care.history.run_ids() == [rec.run_id]  # the history was listed
    # Reopen it from the History and discard a mask: a load, an append and a re-read.
    care.audit.show_record(None)
    with qtbot.waitSignal(care.run_reopened, timeout=30_000):
        care.history.open_requested.emit(rec.run_id)
    assert care.audit.record.run_id == rec.run_id
    care.audit.mask_rows[0].discard.click()
    settle(qtbot, care)
    assert care.history.tree.topLevelItem(0).text(4) == "1"

    names = [n for n, _ in RecordingStore.calls]
    for call in ("open", "list_runs", "load_run", "append_override", "overrides", "begin_run", "finish_run"):
        assert call in names, call
    on_main = [n for n, t in RecordingStore.calls if t is threading.main_thread()]
    assert on_main == []


@pytest.mark.slow
def test_an_unopenable_audit_trail_refuses_the_run_and_unknown_runs_are_a_message(qtbot, care):
    from app.audit.store import AuditStoreError

    def broken():
        raise AuditStoreError("/x/audit.sqlite3: cannot open the audit database (disk I/O error)")

    care.audit_io.service = AuditService(broken)
    care.ask.set_question(QUESTION)
    assert care.start_run(QUESTION, "tiny") is None  # waits for the open, off the GUI thread
    settle(qtbot, care)
    assert care.handle is None and care.ask.run_button.isEnabled()
    assert care.ask.message_level == "error"
    assert "The audit trail cannot be opened, so no run was started" in care.ask.message_text()
    assert care.window.status.currentMessage() == (
        "Audit trail unavailable: /x/audit.sqlite3: cannot open the audit database (disk I/O error)")

    care.audit_io.service = AuditService(RecordingStore)
    care.reopen("no-such-run")
    settle(qtbot, care)
    assert care.window.status.currentMessage().startswith("Cannot open the run: no run no-such-run")
    assert care.audit.record is None
