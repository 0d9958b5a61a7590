"""The PDF prints: every page renders (poppler's pdftoppm) to an image that is not blank, every text
run and every word lies inside the page's margins (pypdf's text matrices; poppler's word boxes), the
charts are drawn, and the text holds the model card, the fairness table, the review and the charts.
Without the DejaVu fonts the PDF still renders, in Latin-1."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pypdf import PdfReader

from governance import reports
from governance.reports import pdf as report_pdf
from tests.governance.conftest import training_frame
from tests.governance.reports.conftest import CARD_TEXT, DATASHEET_TEXT, REVIEW_COMMENT

MM = 72 / 25.4
MARGIN = report_pdf.MARGIN * MM
SLACK = 0.5  # pt: rounding in the text matrices


def _tool(name: str) -> str:
    """A poppler tool: skipped where it is missing, except in CI (.ci/run installs poppler-utils)."""
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing (apt-get install poppler-utils)")
        pytest.skip(f"{name} is missing (apt-get install poppler-utils)")
    return found


@pytest.fixture
def pdf(evidenced) -> bytes:
    return reports.to_pdf(reports.bundle(evidenced))


def _text(data: bytes) -> str:
    """The PDF's text, with every run of white space one space."""
    return " ".join("\n".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages).split())


def test_every_page_renders_to_an_image_that_is_not_blank(pdf, tmp_path):
    pdftoppm = _tool("pdftoppm")
    (tmp_path / "report.pdf").write_bytes(pdf)
    subprocess.run([pdftoppm, "-r", "40", "-png", "report.pdf", "page"], cwd=tmp_path, check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) == len(PdfReader(io.BytesIO(pdf)).pages) >= 3
    for page in pages:
        with Image.open(page) as image:
            grey = np.asarray(image.convert("L"))
        assert (grey < 200).mean() > 0.01, f"{page.name} is (nearly) blank"


def _runs_outside(pdf: bytes) -> list[tuple]:
    """Each text run whose origin (pypdf's text matrix times the current transformation) lies outside
    the margins: (page, x, y, text)."""
    outside = []
    for number, page in enumerate(PdfReader(io.BytesIO(pdf)).pages, start=1):
        width, height = float(page.mediabox.width), float(page.mediabox.height)

        def visit(text, cm, tm, font, size, number=number, width=width, height=height):
            if not text.strip():
                return
            x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
            y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
            if not (MARGIN - SLACK <= x <= width - MARGIN and MARGIN <= y <= height - MARGIN + SLACK):
                outside.append((number, round(x), round(y), text[:40]))

        page.extract_text(visitor_text=visit)
    return outside


def _words_outside(pdf: bytes, folder: Path) -> list[tuple]:
    """Each word whose box (poppler's, so its right edge too) reaches into a margin."""
    pdftotext = _tool("pdftotext")
    (folder / "report.pdf").write_bytes(pdf)
    subprocess.run([pdftotext, "-bbox", "report.pdf", "boxes.html"], cwd=folder, check=True)
    boxes = (folder / "boxes.html").read_text()
    width, height = (float(n) for n in re.search(r'<page width="([\d.]+)" height="([\d.]+)"', boxes).groups())
    words = re.findall(
        r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>', boxes
    )
    assert len(words) > 500
    return [
        w
        for w in words
        if float(w[0]) < MARGIN - SLACK
        or float(w[2]) > width - MARGIN + SLACK
        or float(w[1]) < MARGIN - SLACK
        or float(w[3]) > height - MARGIN + SLACK
    ]


def test_every_text_run_starts_inside_the_margins(pdf):
    assert _runs_outside(pdf) == []


def test_every_word_box_lies_inside_the_margins(pdf, tmp_path):
    assert _words_outside(pdf, tmp_path) == []


def test_the_pdf_holds_the_card_the_fairness_table_the_review_and_the_charts(pdf):
    text = _text(pdf)
    assert CARD_TEXT in text
    assert DATASHEET_TEXT in text
    # The training data's composition is a DP summary: the file says its numbers are noisy, and how.
    assert "Noisy numbers: a differentially private summary (epsilon 1 in all)" in text
    assert "With 95% probability the noise leaves the count within ±" in text
    if (report_pdf.FONT_DIR / "DejaVuSans.ttf").exists():  # .ci/run installs fonts-dejavu-core
        assert REVIEW_COMMENT in text  # the dash and the ≤ print as themselves
    else:
        assert REVIEW_COMMENT.replace("—", "?").replace("≤", "?") in text
    for sex, rows in training_frame().groupby("sex"):
        positives = int(rows["label"].sum())
        assert re.search(
            rf"sex=\d(?: \(reference\))? {len(rows)} {positives} 0\.\d+ \[",
            text.replace(f"sex={1 - sex}", "other"),
        ), sex
    assert "income@1 --TRAINED_ON--> adult@v1" in text
    # A table cell breaks long words where its column ends: compare without the breaks.
    threshold = "max 0.1; metric demographic_parity_difference; sensitive_feature sex"
    assert threshold.replace(" ", "") in text.replace(" ", "")
    # Text drawn inside the charts: the fairness chart's title and group labels, the importance
    # chart's axis, the provenance graph's nodes.
    assert "selection rate by sex" in text
    assert "sex=0 (n=" in text
    assert "mean |SHAP value|" in text
    assert "Provenance: where the version comes from" in text


def test_the_charts_are_drawn_in_colour_on_their_pages(pdf, tmp_path):
    pdftoppm = _tool("pdftoppm")
    reader = PdfReader(io.BytesIO(pdf))
    number = next(
        i for i, p in enumerate(reader.pages, start=1) if "selection rate by sex" in p.extract_text()
    )
    (tmp_path / "report.pdf").write_bytes(pdf)
    page = f"{number}"
    subprocess.run(
        [pdftoppm, "-r", "50", "-png", "-f", page, "-l", page, "report.pdf", "chart"],
        cwd=tmp_path,
        check=True,
    )
    (image_path,) = tmp_path.glob("chart-*.png")
    with Image.open(image_path) as image:
        r, g, b = np.asarray(image.convert("RGB")).astype(int).transpose(2, 0, 1)
    # The bars are the accent blue (#1f5fbf) or the reference group's dark blue (#0b2f6b).
    assert ((b > 100) & (b - r > 60) & (b - g > 40)).sum() > 100


def test_without_the_unicode_font_the_pdf_is_set_in_latin_1(evidenced, monkeypatch, tmp_path):
    monkeypatch.setattr(report_pdf, "FONT_DIR", Path(tmp_path / "no-fonts"))
    data = reports.to_pdf(reports.bundle(evidenced))
    text = _text(data)
    assert CARD_TEXT in text
    assert REVIEW_COMMENT.replace("—", "?").replace("≤", "?") in text


def test_long_text_many_groups_and_other_scripts_stay_inside_the_margins(evidenced, alice, tmp_path):
    from explain import fairness
    from explain.models import JobKind
    from tests.factories import make_datasheet, make_job
    from tests.governance.conftest import FULL_CARD

    frame = training_frame()
    frame["region"] = frame.index % 4
    assessed = fairness.assess(
        frame["label"].to_numpy(), (frame["score"] > 0.45).to_numpy(), frame[["sex", "region"]], resamples=20
    )
    make_job(evidenced, JobKind.FAIRNESS, result=assessed, user=alice)
    card = {**FULL_CARD, "notes": "Проверено аудитором. " * 40 + "x" * 300}
    card["model_details"] = {**FULL_CARD["model_details"], "description": "a long description " * 120}
    make_datasheet(evidenced.node.workspace, alice, content=card)
    data = reports.to_pdf(reports.bundle(evidenced))
    assert _runs_outside(data) == []
    assert _words_outside(data, tmp_path) == []
    text = _text(data)
    assert "Проверено аудитором." in text
    assert "By sex, region" in text
