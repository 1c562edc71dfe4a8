"""``history --verify``: recompute every stored hash and every chain link.

A run fails when its stored record no longer matches its ``record_sha256``, an artifact no
longer matches its ``sha256``, its chain row is missing or records another digest, or a chain
link does not follow from the one before it. Each failure names the run, so the lead
radiologist knows which records to re-check against the run folders or backups.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from . import chain
from .artifacts import sha256
from .schema import TRIGGERS


@dataclass(frozen=True)
class Problem:
    run_id: str  # "" for the trail as a whole (a missing trigger, a broken start row)
    reason: str

    def line(self) -> str:
        return f"run {self.run_id}: {self.reason}" if self.run_id else self.reason


@dataclass
class VerifyReport:
    runs: int = 0
    overrides: int = 0
    chain_rows: int = 0
    head: str = chain.GENESIS
    chain_started: str = ""
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def failed_runs(self) -> list[str]:
        return list(dict.fromkeys(p.run_id for p in self.problems if p.run_id))


def verify(conn: sqlite3.Connection) -> VerifyReport:
    """Check the whole trail (read-only). Never raises for tampering: that is what it reports.

    Raises:
        sqlite3.DatabaseError: the database cannot be read at all.
    """
    rep = VerifyReport()
    bad = rep.problems.append
    present = {str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    for name in TRIGGERS:
        if name not in present:
            bad(Problem("", f"protective trigger {name} is missing (the trail was edited outside CARE Viewer)"))

    runs = {str(r[0]): r[1:] for r in conn.execute(
        "SELECT run_id, record_json, record_sha256 FROM runs ORDER BY rowid")}
    rep.runs = len(runs)
    for run_id, (record_json, digest) in runs.items():
        if sha256(str(record_json).encode("utf-8")) != digest:
            bad(Problem(run_id, "the stored record does not match its record_sha256"))
        # CAST: an attacker may have stored the image as TEXT, which would not even decode
        for name, png, sha in conn.execute(
                "SELECT name, CAST(png AS BLOB), sha256 FROM artifacts WHERE run_id = ?", (run_id,)):
            if sha256(bytes(png)) != sha:
                bad(Problem(run_id, f"artifact {name} does not match its sha256"))
    orphans = conn.execute("SELECT DISTINCT run_id FROM artifacts WHERE run_id NOT IN (SELECT run_id FROM runs)")
    for (run_id,) in orphans:
        bad(Problem(str(run_id), "artifacts without a recorded run"))

    chained: set[str] = set()
    chained_overrides: set[tuple[str, int]] = set()
    prev = chain.GENESIS
    for seq, kind, run_id, ref, when, digest, link, note in conn.execute(
            "SELECT seq, kind, run_id, ref, time, digest, link, note FROM chain ORDER BY seq"):
        rep.chain_rows += 1
        who = str(run_id)
        if kind == chain.KIND_START:
            if rep.chain_rows != 1 or digest != chain.start_digest(note):
                bad(Problem("", f"chain row {seq}: the start row was altered or moved"))
            rep.chain_started = str(when)
        elif kind == chain.KIND_RUN:
            chained.add(who)
            if who not in runs:
                bad(Problem(who, "recorded in the chain but its record is gone"))
            elif digest != chain.stored_run_digest(conn, who):
                bad(Problem(who, "the stored run (record, status, answer or artifacts) differs from the chain"))
        elif kind == chain.KIND_OVERRIDE:
            chained_overrides.add((who, int(ref)))
            if chain.stored_override_digest(conn, who, int(ref)) != digest:
                bad(Problem(who, f"override {ref} differs from the chain (changed or removed)"))
        if chain.link(prev, str(digest), who, str(when)) != link:
            bad(Problem(who, f"chain link {seq} is broken (a row before or at it was changed)"))
        prev = str(link)
    rep.head = prev
    if rep.chain_rows == 0:
        bad(Problem("", "the hash chain is missing"))
    for run_id in runs:
        if run_id not in chained:
            bad(Problem(run_id, "the run is not in the chain (inserted outside CARE Viewer)"))
    for run_id, seq in conn.execute("SELECT run_id, seq FROM overrides ORDER BY rowid"):
        rep.overrides += 1
        if (str(run_id), int(seq)) not in chained_overrides:
            bad(Problem(str(run_id), f"override {seq} is not in the chain (inserted outside CARE Viewer)"))
    return rep
