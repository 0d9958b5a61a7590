"""A release request checked and completed before anything is spent (privacy/queries.py): what the
metadata fills in, what the ledger takes as the same question, and what is refused, naming the field."""

from __future__ import annotations

import pytest

from core.errors import ApplicationError
from privacy.queries import normalise_query, query_hash
from tests.factories import make_private_dataset_version

SUM = {"statistic": "sum", "column": "score", "mechanism": "laplace", "epsilon": 0.5}


@pytest.fixture
def adult(acme, alice):
    """adult@v1: `score` bounded [0, 1], `sex` with the public categories 0 and 1, 400 public rows."""
    return make_private_dataset_version(acme, alice)


def test_the_metadata_completes_a_request(adult):
    query = normalise_query(adult, {**SUM, "group_by": "sex", "delta": None})
    assert query["bounds"] == [0.0, 1.0]
    assert query["group_categories"] == ["0", "1"]
    assert query["unit"] == 1
    assert "delta" not in query  # an absent value is not part of the question


def test_the_same_question_asked_two_ways_has_one_hash(adult):
    spelled_out = normalise_query(adult, {**SUM, "bounds": [0, 1], "delta": None})
    reordered = normalise_query(adult, dict(reversed(list(SUM.items()))))
    assert query_hash(spelled_out) == query_hash(reordered)
    assert query_hash(normalise_query(adult, {**SUM, "epsilon": 0.25})) != query_hash(reordered)


def test_a_request_the_data_cannot_answer_is_refused_naming_every_field(adult):
    with pytest.raises(ApplicationError) as refused:
        normalise_query(adult, {**SUM, "column": "income", "group_by": "age"})
    assert {e.field for e in refused.value.errors} == {"column", "group_by"}
    with pytest.raises(ApplicationError) as unbounded:
        normalise_query(adult, {**SUM, "bounds": [1, 0]})
    assert [e.field for e in unbounded.value.errors] == ["bounds"]
