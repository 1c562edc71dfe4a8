"""The answers section: each evidence pass's reasoning and answer (collapsed), the vote
table and the winner with its tie-break."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QSizePolicy, QTableWidget, QTableWidgetItem

from app.audit.present import RunPresentation, VoteSummary, breakable

from .widgets import DIM, WARN, Section, esc, label, span


def fill_answers(sec: Section, p: RunPresentation) -> tuple[list[Section], QTableWidget | None]:
    sections = []
    for a in p.answers:
        s = Section(a.title, expanded=False)
        s.header.setMinimumWidth(40)
        s.header.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        s.header.setStyleSheet("QToolButton{border:none; color:#c3cad2; text-align:left; padding:2px 0px;}")
        parts = [f"<b>Reasoning</b><br>{esc(breakable(a.think)) if a.think else '<i>(none given)</i>'}",
                 f"<b>Answer</b><br>{esc(breakable(a.answer))}"]
        if a.mean_prob_text:
            parts.append(span(a.mean_prob_text, DIM))
        if a.format_text:
            parts.append(span(f"Format: {esc(a.format_text)}", WARN))
        s.add(label("<br>".join(parts), rich=True))
        sections.append(s)
        sec.add(s)
    if not p.answers:
        sec.add(label("No answer was produced.", color=DIM))
    table = None
    if p.vote is not None and p.vote.rows:
        table = _vote_table(p.vote)
        sec.add(table)
        lines = [f"Winner: <b>{esc(breakable(p.vote.winner_text))}</b>{p.vote.winner_count}"]
        if p.vote.passes_text:
            lines.append(span(esc(p.vote.passes_text), DIM))
        if p.vote.tie_rule:
            lines.append(span(f"Tie-break: {esc(p.vote.tie_rule)}", WARN))
            lines.append(span(esc(breakable(p.vote.detail_short)), DIM))
        sec.add(label("<br>".join(lines), rich=True))
    sec.set_title(f"Answers and vote ({len(p.answers)})")
    return sections, table


def _vote_table(v: VoteSummary) -> QTableWidget:
    t = QTableWidget(len(v.rows), 3)
    t.setObjectName("VoteTable")
    t.setHorizontalHeaderLabels(["Evidence", "Vote", "p"])
    t.verticalHeader().hide()
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
    t.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
    t.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
    t.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
    t.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    t.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    t.setWordWrap(False)
    t.setTextElideMode(Qt.TextElideMode.ElideRight)
    for i, row in enumerate(v.rows):
        cells = [row.evidence.value, row.cell, row.prob3]
        for j, c in enumerate(cells):
            it = QTableWidgetItem(c)
            it.setToolTip(breakable(row.tip) if j == 1 else c)
            if row.winner:
                it.setForeground(QColor("#7fd6a0"))
                f = it.font()
                f.setBold(True)
                it.setFont(f)
            t.setItem(i, j, it)
    t.resizeRowsToContents()
    t.setFixedHeight(t.horizontalHeader().height() + sum(t.rowHeight(i) for i in range(t.rowCount())) + 4)
    return t
