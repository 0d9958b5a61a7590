"""The HTML report: one self-contained page (no script, nothing fetched) that holds the model card's
text, the fairness table with each group's size, the reviewer's comment, the thresholds, the edges
and the charts, each chart the bundle's own SVG as a data: URI."""

from __future__ import annotations

import base64
import re

from governance import reports
from tests.governance.conftest import training_frame
from tests.governance.reports.conftest import CARD_TEXT, DATASHEET_TEXT, REVIEW_COMMENT


def test_the_page_holds_the_card_the_fairness_table_the_review_and_the_thresholds(evidenced):
    page = reports.to_html(reports.bundle(evidenced))
    assert CARD_TEXT.replace("'", "&#x27;") in page
    assert DATASHEET_TEXT in page
    note = re.search(r"<p class='note'>(Noisy numbers: .*?)</p>", page)
    assert note, "the DP summary's numbers are shown without their note"
    assert "each count of the histogram of sex within ±" in note[1]
    assert "was adjusted to add up to the count" in note[1]
    assert f"<q>{REVIEW_COMMENT}</q>" in page
    table = re.search(r"<table class='fairness-groups'>.*?</table>", page, re.S)
    assert table
    for sex, rows in training_frame().groupby("sex"):
        positives = int(rows["label"].sum())
        assert re.search(
            rf"<td>sex={sex}(?: \(reference\))?</td><td>{len(rows)}</td><td>{positives}</td>", table[0]
        )
    assert "max 0.1; metric demographic_parity_difference; sensitive_feature sex" in page
    assert "<code>income@1 --TRAINED_ON--&gt; adult@v1</code>" in page


def test_the_charts_are_the_bundles_svg_as_images_and_nothing_runs_or_is_fetched(evidenced):
    document = reports.bundle(evidenced)
    page = reports.to_html(document)
    images = dict(
        re.findall(
            r"<img class='chart' id='chart-([\w-]+)' alt='[^']*' src='data:image/svg\+xml;base64,([^']+)'>",
            page,
        )
    )
    assert set(images) == {"fairness-sex", "importance", "provenance"}
    assert base64.b64decode(images["fairness-sex"]).decode() == document["report"]["charts"]["fairness:sex"]
    assert "<script" not in page
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", page)


def test_text_from_the_record_is_escaped(evidenced):
    document = reports.bundle(evidenced)
    document["report"]["promotion_requests"][0]["reviews"][0]["comment"] = "<script>alert(1)</script>"
    page = reports.to_html(document)
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
