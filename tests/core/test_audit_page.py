"""The audit log page: each event's payload and full hashes, the API's filter syntax (`promotion.*`),
an unreadable time shown as an error on the page, and pagination that keeps the filters."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from core.actors import Actor
from core.audit import audit_append
from core.models import AuditEvent
from tests.factories import make_model_version, make_policy, make_promotion_request, make_review

URL = reverse("dashboard-audit", kwargs={"slug": "acme"})


def _page(user, **query) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(URL, query)
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def reviewed(acme, ada, alice, bob):
    """income@1, alice's request to move it to production, and bob's approval with his comment."""
    make_policy(acme, ada, "prod")
    version = make_model_version(acme, alice)
    request = make_promotion_request(version, alice, comment="please review")
    make_review(request, bob, comment='Card read; parity 0.04 < 0.1 & "sex" is not a top feature.')
    return request


def test_each_event_shows_its_payload_and_its_full_hashes(carol, reviewed):
    page = _page(carol)
    approval = AuditEvent.objects.get(action="promotion.approve")
    detail = re.search(rf'<tbody id="event-{approval.seq}">(.*?)</tbody>\s*</table>\s*</details>', page, re.S)
    assert detail, page
    assert "Card read; parity 0.04 &lt; 0.1 &amp; &quot;sex&quot; is not a top feature." in detail[1]
    assert f'<code class="hash">{approval.hash}</code>' in detail[1]
    assert f'<code class="hash">{approval.prev_hash}</code>' in detail[1]
    assert len(approval.hash) == 64


def test_structured_payload_values_read_as_indented_json(acme, carol, alice):
    audit_append(
        workspace=acme,
        actor=Actor(user=alice),
        action="test.event",
        target="t:1",
        payload={"nested": {"b": [1, 2.5], "a": True}},
    )
    page = _page(carol, action="test.event")
    assert (
        '<pre class="json">{\n  &quot;a&quot;: true,\n  &quot;b&quot;: [\n    1,\n    2.5\n  ]\n}</pre>'
        in page
    )


def test_the_filters_take_the_api_syntax(carol, reviewed):
    prefix = _page(carol, action="promotion.*")
    actions = set(re.findall(r"<tr><td>\d+</td><td[^>]*>[^<]+</td><td>[^<]+</td><td>([^<]+)</td>", prefix))
    assert {"promotion.request", "promotion.approve"} <= actions
    assert all(action.startswith("promotion.") for action in actions)  # model.register left out
    exact = _page(carol, action="promotion.request")
    assert set(re.findall(r"<td>(promotion\.\w+)</td>", exact)) == {"promotion.request"}
    # Without the star a value is exact: nothing is called "promotion.".
    assert "No event matches." in _page(carol, action="promotion.")
    by_actor = _page(carol, actor="user:b*")
    assert set(re.findall(r"<td>(user:\w+)</td>", by_actor)) == {"user:bob"}
    by_target = _page(carol, target="model:income@1")
    assert set(re.findall(r'<td class="key">([^<]+)</td>', by_target)) == {"model:income@1"}


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ({"since": "not-a-date"}, "since: Datetime has wrong format"),
        ({"until": "yesterday"}, "until: Datetime has wrong format"),
        ({"since": "2026-02-01T00:00", "until": "2026-01-01T00:00"}, "until: must not be before since"),
    ],
)
def test_a_filter_that_cannot_be_read_is_an_error_on_the_page(carol, reviewed, query, problem):
    page = _page(carol, **query)
    assert 'id="filter-problems"' in page
    assert problem in page
    assert "Chain intact" in page  # the page still renders
    assert '<table class="audit">' not in page  # and lists nothing it was not asked for
    assert f'value="{next(iter(query.values()))}"' in page  # what was typed stays in the form


def test_a_time_filter_that_can_be_read_applies(carol, reviewed):
    assert "No event matches." in _page(carol, since="2999-01-01T00:00")
    assert "promotion.approve" in _page(carol, since="2000-01-01T00:00Z", until="2999-01-01T00:00+01:00")


def test_pages_keep_the_filters(acme, carol, alice):
    for i in range(55):
        audit_append(
            workspace=acme, actor=Actor(user=alice), action="bulk.event", target=f"t:{i}", payload={}
        )
    page = _page(carol, action="bulk.*")
    assert page.count('<tr class="event-detail">') == 50
    assert "Page 1 of 2." in page
    older = re.search(r'<a href="\?([^"]+)">older</a>', page)
    assert older, page
    assert "action=bulk.%2A" in older[1].replace("&amp;", "&")
    second = Client()
    second.force_login(carol)
    rest = second.get(URL + "?" + older[1].replace("&amp;", "&")).content.decode()
    assert rest.count('<tr class="event-detail">') == 5
