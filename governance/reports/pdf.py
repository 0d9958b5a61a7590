"""The report as a PDF (fpdf2), with the same content as the HTML page: A4, 15 mm margins, the
charts as vector graphics from the bundle's SVG.

Every cell and multi_cell moves the cursor back to the left margin on the next line
(new_x=LMARGIN, new_y=NEXT): fpdf2's default leaves it at the cell's right edge, which pushed every
later line off the page. Long words (hashes, ids, JSON) break where the line ends. The text is set
in DejaVu Sans (Unicode) where Debian's fonts-dejavu-core is installed; otherwise in the core
Helvetica, where text outside Latin-1 reads as "?".
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fpdf import FPDF
from fpdf.enums import Align, TableBordersLayout, VAlign, WrapMode, XPos, YPos
from fpdf.fonts import FontFace

from governance.reports import formatting as fmt
from governance.reports.charts import svg_size

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
MARGIN = 15.0  # mm, on every side; the footer sits inside the bottom one's inner edge
BOTTOM = 24.0  # mm: where a page breaks, leaving room for the footer above the margin


class ReportPDF(FPDF):
    """A4 with the report's fonts, a footer naming the report and the page, and writing helpers
    that keep every line inside the margins."""

    def __init__(self, title: str) -> None:
        super().__init__(format="A4")
        self.report_title = title
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(auto=True, margin=BOTTOM)
        self.unicode = all((FONT_DIR / name).exists() for name in _FONT_FILES.values())
        if self.unicode:
            for (family, style), name in _FONT_FILES.items():
                self.add_font(family, style, str(FONT_DIR / name))
        self.sans = "DejaVu Sans" if self.unicode else "Helvetica"
        self.mono = "DejaVu Sans Mono" if self.unicode else "Courier"
        self.set_title(title)
        self.set_creator("mlgov")

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        self.output(buffer)
        return buffer.getvalue()

    def clean(self, value: Any) -> str:
        """Text the font can set."""
        text = "" if value is None else str(value)
        return text if self.unicode else text.encode("latin-1", "replace").decode("latin-1")

    def footer(self) -> None:
        self.set_y(-(BOTTOM - 3))
        self.set_font(self.sans, size=7)
        self.set_text_color(110, 110, 110)
        self.cell(
            0,
            4,
            self.clean(f"{self.report_title} · page {self.page_no()}/{{nb}}"),
            align=Align.C,
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
        self.set_text_color(0, 0, 0)

    # --- writing ---

    def heading(self, text: str, level: int = 2) -> None:
        size = {1: 16, 2: 13, 3: 10.5, 4: 9.5}[level]
        if self.will_page_break(size * 0.35 * 4 + 10):  # no heading alone at the foot of a page
            self.add_page()
        self.ln({1: 0, 2: 4, 3: 2.5, 4: 1.5}[level])
        self.set_font(self.sans, "B", size)
        self.multi_cell(0, size * 0.5, self.clean(text), align=Align.L, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        if level == 2:
            self.set_draw_color(200, 205, 212)
            self.line(self.l_margin, self.get_y() + 0.5, self.w - self.r_margin, self.get_y() + 0.5)
            self.ln(2)
        self.set_font(self.sans, size=9)

    def para(
        self, text: str, *, size: float = 9, style: str = "", mono: bool = False, grey: bool = False
    ) -> None:
        self.set_font(self.mono if mono else self.sans, style, size)
        if grey:
            self.set_text_color(90, 96, 105)
        self.multi_cell(0, size * 0.47, self.clean(text), align=Align.L, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(0, 0, 0)

    def fields(self, items: Sequence[tuple[str, str]]) -> None:
        """Labelled texts: each label in bold on the left, its text (wrapped) on the right."""
        if not items:
            return
        self.set_font(self.sans, size=8.5)
        with self.table(
            col_widths=(1, 3.4),
            width=self.epw,
            align=Align.L,
            text_align=Align.L,
            v_align=VAlign.T,
            line_height=4,
            padding=(0.6, 1.2),
            borders_layout=TableBordersLayout.NONE,
            first_row_as_headings=False,
        ) as table:
            for label, text in items:
                row = table.row()
                row.cell(self.clean(label), style=FontFace(emphasis="B"))
                row.cell(self.clean(text))
        self.ln(1)

    def grid(
        self,
        headings: Sequence[str] | None,
        rows: Sequence[Sequence[Any]],
        widths: Sequence[float],
        *,
        size: float = 8,
        mono_columns: Sequence[int] = (),
    ) -> None:
        """A table across the page's width, under `headings` where given; cells wrap (long words break
        inside their cell)."""
        self.set_font(self.sans, size=size)
        mono = FontFace(family=self.mono, size_pt=size - 0.5)
        with self.table(
            col_widths=tuple(widths),
            width=self.epw,
            align=Align.L,
            text_align=Align.L,
            v_align=VAlign.T,
            line_height=size * 0.45,
            padding=(0.8, 1.2),
            headings_style=FontFace(emphasis="B", fill_color=(236, 239, 243)),
            wrapmode=WrapMode.WORD,
            first_row_as_headings=headings is not None,
        ) as table:
            if headings is not None:
                heading = table.row()
                for title in headings:
                    heading.cell(self.clean(title))
            for values in rows:
                row = table.row()
                for index, value in enumerate(values):
                    row.cell(self.clean(value), style=mono if index in mono_columns else None)
        self.ln(2)

    def chart(self, svg: str | None) -> None:
        """An SVG chart across the page's width (smaller where it would not fit on a page)."""
        if not svg:
            return
        width, height = svg_size(svg)
        w = self.epw
        h = w * height / width
        room = self.h - self.t_margin - BOTTOM - 4
        if h > room:
            w, h = w * room / h, room
        if self.will_page_break(h + 2):
            self.add_page()
        top = self.get_y() + 1
        self.image(io.BytesIO(self.clean(svg).encode()), x=self.l_margin, y=top, w=w, h=h)
        self.set_y(top + h + 2)


_FONT_FILES = {
    ("DejaVu Sans", ""): "DejaVuSans.ttf",
    ("DejaVu Sans", "B"): "DejaVuSans-Bold.ttf",
    ("DejaVu Sans Mono", ""): "DejaVuSansMono.ttf",
}


# --- the sections ---------------------------------------------------------------------------------------


def _sheet(pdf: ReportPDF, sheet: Mapping[str, Any], title: str) -> None:
    pdf.heading(f"{title}: {sheet['subject']}", 3)
    if sheet.get("revision") is None:
        pdf.para("No datasheet yet.")
        return
    pdf.para(
        f"Revision {sheet['revision']} by {sheet['created_by'] or '?'} on {fmt.when(sheet['created_at'])}; "
        f"{sheet['completeness']:.0%} complete.",
        grey=True,
    )
    for section in sheet["sections"]:
        source = f" (filled from {', '.join(section['filled_from'])})" if section["filled_from"] else ""
        pdf.heading(f"{section['title']}{source}: {section['filled']}/{section['of']} fields", 4)
        pdf.fields([(item["label"], item["text"]) for item in section["fields"]])
        if section.get("note"):
            pdf.para(section["note"], size=8.5)
        if section["missing"]:
            pdf.para(f"Missing: {', '.join(section['missing'])}", size=8, grey=True)
    if sheet["notes"]:
        pdf.heading("Notes", 4)
        pdf.para(sheet["notes"], size=8.5)
    pdf.heading("Revisions", 4)
    pdf.grid(
        ["Revision", "Time", "By", "Sections changed"],
        [
            [r["revision"], fmt.when(r["created_at"]), r["created_by"], ", ".join(r["changed"])]
            for r in sheet["revisions"]
        ],
        (1, 3, 1.5, 4.5),
    )


def _fairness(pdf: ReportPDF, report: Mapping[str, Any]) -> None:
    pdf.heading("Fairness by group")
    if not report["fairness"]:
        pdf.para("No fairness assessment of this version.")
    for a in report["fairness"]:
        features = ", ".join(a["sensitive_features"])
        boot = a.get("bootstrap") or {}
        intervals = (
            f"{boot['level']} bootstrap intervals ({boot['resamples']} resamples)" if boot else "no intervals"
        )
        pdf.heading(f"By {features}", 3)
        pdf.para(
            f"Assessment {a['job']} on {a['dataset']}: {a['rows']} rows, {a['task']}, {intervals}; "
            f"reference group {a['reference']}.",
            size=8.5,
            grey=True,
        )
        pdf.chart(report["charts"].get(f"fairness:{','.join(a['sensitive_features'])}"))
        data = a.get("data")
        if data:
            overlap = (
                f"{data['overlap_rows']} of {data['rows']} rows are rows of the training data"
                if data["overlap_rows"] is not None
                else "its overlap with the training data was not proven"
            )
            pdf.para(
                f"Data: {data['dataset']} (SHA-256 {data['sha256']}); {overlap} (compared with "
                f"{', '.join(data['training']) or 'no training data'}). {' '.join(data['notes'])}",
                size=8.5,
            )
        pdf.grid(
            ["Group", "Rows", "Positives", a["metric"], "Difference to reference"],
            [
                [
                    g["group"]
                    + (" (reference)" if g["reference"] else "")
                    + ("" if g["eligible"] else " (left out)"),
                    g["size"],
                    "" if g["positives"] is None else g["positives"],
                    fmt.estimate(g["metric"]),
                    fmt.estimate(g["difference"]),
                ]
                for g in a["groups"]
            ],
            (3.2, 1, 1.2, 2.6, 2.6),
        )
        pdf.grid(
            ["Disparity", "Value [interval]"],
            [[d["name"], fmt.estimate(d)] for d in a["disparities"]],
            (3, 2),
        )
        for note in fmt.interval_notes(a):
            pdf.para(f"{fmt.NOTE_MARK} {note}", size=8, grey=True)
        if a["excluded"]:
            left_out = "; ".join(f"{x['group']} ({x['size']} rows): {x['reason']}" for x in a["excluded"])
            pdf.para(f"Groups left out: {left_out}", size=8.5)
        for warning in a["warnings"]:
            pdf.para(warning, size=8.5, style="B")


def _explanation(pdf: ReportPDF, report: Mapping[str, Any]) -> None:
    pdf.heading("Explanation")
    found = report.get("explanation")
    if not found:
        pdf.para("No explanation of this version.")
        return
    pdf.para(
        f"Explanation {found['job']} on {found['dataset']}: {found['rows']} rows, {fmt.backend(found)}, "
        f"additivity residual {fmt.value(found['additivity_residual'])}; "
        f"importance of output {found['output']}.",
        size=8.5,
        grey=True,
    )
    pdf.chart(report["charts"].get("importance"))
    if found["importance"]:
        pdf.grid(
            ["#", "Feature", "Mean |SHAP|"],
            [
                [i + 1, item["feature"], fmt.value(item["mean_abs_shap"])]
                for i, item in enumerate(found["importance"])
            ],
            (0.6, 4, 2),
        )
    else:
        pdf.para(f"Top features: {', '.join(found['top_features'])}")


def _decisions(pdf: ReportPDF, report: Mapping[str, Any]) -> None:
    pdf.heading("Gate decisions")
    if not report["gate_decisions"]:
        pdf.para("No gate decision yet.")
    for decision in report["gate_decisions"]:
        statement = decision["statement"]
        verdict = "PASSED" if statement["passed"] else "FAILED"
        pdf.heading(f"{statement['stage']}: {verdict} ({fmt.when(statement['evaluated_at'])})", 3)
        pdf.para(f"Decision {statement['decision']}, asked by {statement.get('requested_by')}.", size=8.5)
        pdf.para(
            f"Signature (Ed25519, key {decision['key_id']}): {decision['signature']}", size=7.5, mono=True
        )
        pdf.grid(
            ["Rule", "Result", "Threshold", "Value", "Reason", "Evidence"],
            [
                [
                    f"{rule['policy']}/{rule['rule']} ({rule['type']}, "
                    f"revision {rule.get('policy_revision')})",
                    fmt.RESULTS[rule["passed"]],
                    fmt.parameters(written),
                    fmt.measured(rule["evidence"]),
                    rule["reason"],
                    fmt.evidence(rule["evidence"]),
                ]
                for rule, written in fmt.decision_rules(decision)
            ],
            (3.1, 0.9, 2, 1.4, 2.4, 2.4),
            size=7,
        )


def _requests(pdf: ReportPDF, report: Mapping[str, Any]) -> None:
    pdf.heading("Promotion requests and reviews")
    if not report["promotion_requests"]:
        pdf.para("No promotion request.")
    for request in report["promotion_requests"]:
        closed = f", closed {fmt.when(request['closed_at'])}" if request["closed_at"] else ""
        pdf.heading(f"To {request['stage']}: {request['state']}", 3)
        pdf.para(
            f"Requested by {request['requested_by']} on {fmt.when(request['created_at'])}{closed}.",
            size=8.5,
            grey=True,
        )
        if request["comment"]:
            pdf.fields([("Request comment", request["comment"])])
        if request["reviews"]:
            pdf.grid(
                ["Reviewer", "Role", "Time", "Decision", "Comment"],
                [
                    [r["reviewer"], r["role"], fmt.when(r["time"]), r["decision"], r["comment"]]
                    for r in request["reviews"]
                ],
                (1.4, 1.6, 2.2, 1, 4),
            )
        else:
            pdf.para("No review.", size=8.5)


def _provenance(pdf: ReportPDF, report: Mapping[str, Any]) -> None:
    graph = report["provenance_graph"]
    pdf.heading("Provenance")
    pdf.chart(report["charts"].get("provenance"))
    pdf.heading("Edges", 4)
    for edge in graph["edges"]:
        pdf.para(fmt.edge(edge), size=8, mono=True)
    if not graph["edges"]:
        pdf.para("none", size=8)
    pdf.heading("Nodes", 4)
    pdf.grid(
        ["Node", "Kind", "Steps upstream"],
        [[n["key"], n["kind"], n["depth"]] for n in graph["nodes"]],
        (4, 2, 1),
    )
    if graph["truncated"]:
        pdf.para("The graph was cut at the service's depth limit.", style="B")


def _audit(pdf: ReportPDF, report: Mapping[str, Any]) -> None:
    pdf.heading("Audit events")
    pdf.para("Each hash is SHA-256 of the previous hash and the event's canonical JSON.", size=8.5, grey=True)
    for event in report["audit_events"]:
        doc = event["document"]
        if pdf.will_page_break(16):
            pdf.add_page()
        pdf.para(
            f"#{doc['seq']}  {fmt.when(doc['time'])}  {doc['actor']}  {doc['action']}  {doc['target']}",
            size=8,
            style="B",
        )
        pdf.para(f"prev {event['prev_hash']}", size=7, mono=True)
        pdf.para(f"hash {event['hash']}", size=7, mono=True)
        pdf.ln(1)


def to_pdf(document: dict[str, Any]) -> bytes:
    """The whole report as a PDF."""
    report = document["report"]
    name = f"{report['model']}@{report['version']}"
    pdf = ReportPDF(f"Report of model version {name}")
    pdf.add_page()
    pdf.heading(f"Model version {name}", 1)
    pdf.grid(
        None,
        [
            ["Workspace", report["workspace"]],
            ["Stage", report["stage"]],
            ["Artifact SHA-256", report["artifact_sha256"]],
            ["Generated", report["generated_at"]],
            ["Signed with key", report["key_id"]],
        ],
        (1, 4),
    )
    pdf.heading("Model card")
    card = report["model_card"]
    if card:
        _sheet(pdf, card, "Model card")
    else:
        pdf.para("No model card.")
    pdf.heading("Training data's datasheets")
    for sheet in report["datasheets"]:
        _sheet(pdf, sheet, "Datasheet")
    if not report["datasheets"]:
        pdf.para("No training dataset is recorded.")
    for section in (_fairness, _explanation, _decisions, _requests, _provenance, _audit):
        section(pdf, report)
    pdf.heading("Verification")
    pdf.para(
        "The JSON bundle this document was drawn from is signed (Ed25519, key "
        f"{document['key_id']}); check it offline with `mlgov verify-report report.json --public-key "
        "key.json`, which also names any section that no longer matches its digest.",
        size=8.5,
    )
    pdf.para(f"Signature: {document['signature']}", size=7, mono=True)
    pdf.grid(
        ["Section", "SHA-256 of its canonical JSON"],
        list(report["sections"].items()),
        (1.2, 4),
        mono_columns=(1,),
    )
    return pdf.to_bytes()
