"""The whole path, through the API: register -> datasheet -> policy -> gate fails naming the missing
evidence -> evidence added -> request -> two distinct reviewers approve -> Production. The author's
own approval is refused."""

from __future__ import annotations

import threading

import pytest
from django.db import connections
from django.urls import reverse

from core import signing
from core.actors import Actor
from core.errors import ApplicationError
from core.models import AuditEvent
from core.roles import Role
from governance import services
from governance.models import GateDecision, ModelVersion, PromotionRequest, Stage
from lineage.models import Node
from tests.conftest import bearer, session
from tests.explain.conftest import store_bytes
from tests.factories import make_member, make_token
from tests.governance.conftest import FULL_CARD, POLICY, training_frame


def _failed(decision) -> dict[str, str]:
    return {r["rule"]: r["reason"] for r in decision["statement"]["rules"] if not r["passed"]}


def upload_one_approval_policy(workspace, admin) -> None:
    """A policy that lets a version into production with one approval."""
    services.policy_upload(
        workspace=workspace,
        actor=Actor(user=admin),
        document={
            "name": "one-approval",
            "stages": ["production"],
            "rules": [{"type": "approvals", "count": 1}],
        },
    )


def test_the_whole_path_to_production(
    acme, ada, alice, reviewers, eager_celery, django_capture_on_commit_callbacks
):
    import skops.io as sio
    from sklearn.tree import DecisionTreeClassifier

    author = bearer(
        make_token(
            acme,
            alice,
            sorted(
                {
                    "artifact:write",
                    "lineage:write",
                    "lineage:read",
                    "model:read",
                    "model:write",
                    "datasheet:write",
                    "explain:run",
                    "gate:check",
                    "promotion:request",
                }
            ),
        )
    )
    frame = training_frame()
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(frame[["score", "sex"]], frame["label"])
    data = store_bytes(acme, alice, frame.to_csv(index=False).encode(), "adult.csv")
    author.post(
        reverse("lineage-events"),
        {"events": [{"type": "node", "kind": "DatasetVersion", "key": "adult@v1", "artifact": str(data.pk)}]},
        format="json",
    )
    weights = store_bytes(acme, alice, sio.dumps(model), "income.skops")

    # 1. Register, with the lineage written in the same call.
    response = author.post(
        reverse("model-versions", kwargs={"name": "income"}),
        {
            "version": "1",
            "artifact": str(weights.pk),
            "metrics": {"accuracy": 0.93},
            "run": {"key": "train-1", "job": "train"},
            "datasets": ["adult@v1"],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["stage"] == "none"

    # 2. A partial model card saves and reports its completeness.
    card_url = reverse("model-card", kwargs={"name": "income", "version": "1"})
    partial = {"model_details": {"name": "income", "version": "1"}}
    response = author.put(card_url, {"content": partial}, format="json")
    assert response.status_code == 200, response.content
    assert 0 < response.json()["completeness"]["overall"] < 1

    # 3. The policy (an admin's), 4. the gate fails and names what is missing.
    assert (
        session(ada, acme).post(reverse("policy-list"), {"document": POLICY}, format="json").status_code
        == 201
    )
    gate_url = reverse("model-gate", kwargs={"name": "income", "version": "1"})
    decision = author.post(gate_url, {"stage": "production"}, format="json").json()
    assert decision["passed"] is False
    failed = _failed(decision)
    assert set(failed) == {"card", "lineage", "explained", "reviewers"}
    assert "incomplete model card sections" in failed["card"]
    assert "Commit" in failed["lineage"]
    assert "Environment" in failed["lineage"]
    assert failed["explained"] == "the model version has no explanation"
    assert "no open promotion request" in failed["reviewers"]

    # 5. The missing evidence is added: the full card, the commit and environment, an explanation.
    assert (
        author.put(card_url, {"content": FULL_CARD}, format="json").json()["completeness"]["overall"] == 1.0
    )
    author.post(
        reverse("lineage-events"),
        {
            "events": [
                {
                    "type": "run",
                    "run": {"key": "train-1"},
                    "commit": {"key": "3f2a9c1"},
                    "environment": {"key": "py311"},
                }
            ]
        },
        format="json",
    )
    with django_capture_on_commit_callbacks(execute=True):
        job = author.post(
            reverse("model-explanations", kwargs={"name": "income", "version": "1"}),
            {"dataset_version": "adult@v1", "features": ["score", "sex"]},
            format="json",
        )
    assert author.get(job["Location"]).json()["state"] == "succeeded"
    failed = _failed(author.post(gate_url, {"stage": "production"}, format="json").json())
    assert set(failed) == {"reviewers"}

    # 6. The request; the author cannot approve it; two distinct reviewers do.
    created = author.post(
        reverse("model-promotion-requests", kwargs={"name": "income", "version": "1"}),
        {"stage": "production", "comment": "ready"},
        format="json",
    )
    assert created.status_code == 201, created.content
    request_id = created.json()["id"]
    alice_as_reviewer = session(alice, acme)
    refused = alice_as_reviewer.post(
        reverse("promotion-approve", kwargs={"request_id": request_id}), {"comment": "lgtm"}, format="json"
    )
    assert refused.status_code == 403  # her role has no approval scope
    rita, ravi = reviewers
    first = session(rita, acme).post(
        reverse("promotion-approve", kwargs={"request_id": request_id}),
        {"comment": "fairness evidence read"},
        format="json",
    )
    assert first.status_code == 200, first.content
    assert first.json()["state"] == "open"
    assert first.json()["gate"]["passed"] is False  # one approval of two
    again = session(rita, acme).post(
        reverse("promotion-approve", kwargs={"request_id": request_id}), {"comment": "twice"}, format="json"
    )
    assert again.status_code == 409
    second = session(ravi, acme).post(
        reverse("promotion-approve", kwargs={"request_id": request_id}), {"comment": "ok"}, format="json"
    )
    assert second.status_code == 200, second.content
    assert second.json()["state"] == "completed"
    assert second.json()["gate"]["passed"] is True
    assert ModelVersion.objects.get(node__key="income@1").stage == Stage.PRODUCTION
    # Audit and lineage show every step.
    actions = list(AuditEvent.objects.filter(workspace=acme).values_list("action", flat=True))
    for action in (
        "model.register",
        "model_card.push",
        "policy.upload",
        "promotion.request",
        "promotion.approve",
        "model.stage",
    ):
        assert action in actions, action
    assert Node.objects.get(key="income@1").properties["stage"] == "production"
    # The deploy that follows: CI asks the gate again and passes on the approvals that moved it there.
    deploy = author.post(gate_url, {"stage": "production"}, format="json").json()
    assert deploy["passed"] is True, _failed(deploy)
    reviewers_rule = next(r for r in deploy["statement"]["rules"] if r["rule"] == "reviewers")
    assert reviewers_rule["evidence"]["approvers"] == ["ravi", "rita"]
    assert reviewers_rule["evidence"]["request"] == request_id
    assert reviewers_rule["evidence"]["request_state"] == "completed"


def test_the_author_cannot_approve_even_as_a_reviewer(acme, alice, registered):
    """An admin who registered the version holds approval:decide, and is still refused."""
    admin_author = make_member(acme, Role.ADMIN, "adam")
    request = services.promotion_request(
        workspace=acme, actor=Actor(user=admin_author), version=registered, stage="staging"
    )
    with pytest.raises(ApplicationError) as error:
        services.review(
            workspace=acme, actor=Actor(user=alice), request_id=request.pk, approve=True, comment="mine"
        )
    assert error.value.status == 403
    with pytest.raises(ApplicationError) as error:
        services.review(
            workspace=acme,
            actor=Actor(user=admin_author),
            request_id=request.pk,
            approve=True,
            comment="my request",
        )
    assert error.value.status == 403
    # Each refused attempt leaves exactly one audit event: who, what and why.
    refused = AuditEvent.objects.filter(workspace=acme, action="promotion.review.refuse").order_by("seq")
    assert [(e.actor, e.target) for e in refused] == [
        (f"user:{alice.username}", f"request:{request.pk}"),
        (f"user:{admin_author.username}", f"request:{request.pk}"),
    ]
    assert all("cannot review it" in e.payload["reason"] and e.payload["status"] == 403 for e in refused)
    assert not AuditEvent.objects.filter(workspace=acme, action="promotion.approve").exists()


def test_every_refused_review_and_transition_is_audited_once(acme, ada, alice, carol, registered, reviewers):
    request = services.promotion_request(
        workspace=acme, actor=Actor(user=alice), version=registered, stage="staging"
    )
    # A second open request for the same move, and a move the stage does not allow.
    with pytest.raises(ApplicationError) as error:
        services.promotion_request(
            workspace=acme, actor=Actor(user=alice), version=registered, stage="staging"
        )
    assert error.value.status == 409
    archived = ModelVersion.objects.get(pk=registered.pk)
    archived.stage = Stage.ARCHIVED
    with pytest.raises(ApplicationError) as error:
        services.promotion_request(
            workspace=acme, actor=Actor(user=alice), version=archived, stage="production"
        )
    assert error.value.status == 409
    # An auditor is no reviewer; a reviewer reviews once; a closed request takes no more reviews.
    first, second = reviewers

    def review(user, approve):
        return services.review(
            workspace=acme, actor=Actor(user=user), request_id=request.pk, approve=approve, comment="c"
        )

    with pytest.raises(ApplicationError):
        review(carol, True)
    review(first, True)  # the gate fails (no policy): the request stays open
    with pytest.raises(ApplicationError):
        review(first, True)
    review(second, False)  # rejected: closed
    with pytest.raises(ApplicationError):
        review(ada, True)
    events = AuditEvent.objects.filter(workspace=acme, action__endswith=".refuse").order_by("seq")
    assert [(e.action, e.actor, e.payload["status"]) for e in events] == [
        ("promotion.request.refuse", f"user:{alice.username}", 409),
        ("promotion.request.refuse", f"user:{alice.username}", 409),
        ("promotion.review.refuse", f"user:{carol.username}", 403),
        ("promotion.review.refuse", f"user:{first.username}", 409),
        ("promotion.review.refuse", f"user:{ada.username}", 409),
    ]
    assert "exists already" in events[0].payload["reason"]
    assert "is archived; it cannot move to production" in events[1].payload["reason"]
    assert "already reviewed" in events[3].payload["reason"]
    assert "the request is rejected" in events[4].payload["reason"]


def test_rejection_needs_a_comment_and_closes_the_request(acme, alice, registered, reviewers):
    request = services.promotion_request(
        workspace=acme, actor=Actor(user=alice), version=registered, stage="staging"
    )
    client = session(reviewers[0], acme)
    url = reverse("promotion-reject", kwargs={"request_id": request.pk})
    assert client.post(url, {"comment": ""}, format="json").status_code == 400
    response = client.post(url, {"comment": "no fairness evidence"}, format="json")
    assert response.json()["state"] == "rejected"
    assert ModelVersion.objects.get(pk=registered.pk).stage == Stage.NONE


def test_an_approval_and_both_request_lists_name_each_review_and_its_reviewer(
    acme, ada, alice, registered, reviewers
):
    services.policy_upload(workspace=acme, actor=Actor(user=ada), document=POLICY)  # two approvals
    request = services.promotion_request(
        workspace=acme, actor=Actor(user=alice), version=registered, stage="production"
    )
    approved = session(reviewers[0], acme).post(
        reverse("promotion-approve", kwargs={"request_id": request.pk}), {"comment": "read it"}, format="json"
    )
    assert approved.json()["state"] == "open"  # the gate still wants a second approval
    expected = [("rita", True, "read it")]
    assert [(r["reviewer"], r["approve"], r["comment"]) for r in approved.json()["reviews"]] == expected
    reader = session(alice, acme)
    for url in (
        reverse("promotion-request-list"),
        reverse("model-promotion-requests", kwargs={"name": "income", "version": "1"}),
    ):
        [listed] = reader.get(url).json()["results"]
        assert [(r["reviewer"], r["approve"], r["comment"]) for r in listed["reviews"]] == expected, url


def test_promoting_archives_the_previous_production_version(acme, ada, alice, registered, reviewers):
    services.policy_upload(
        workspace=acme,
        actor=Actor(user=ada),
        document={"name": "light", "stages": ["production"], "rules": [{"type": "approvals", "count": 1}]},
    )
    for version in (registered, None):
        if version is None:
            import skops.io as sio
            from sklearn.dummy import DummyClassifier

            weights = store_bytes(acme, alice, sio.dumps(DummyClassifier().fit([[0]], [0])), "v2.skops")
            version = services.version_register(
                workspace=acme, actor=Actor(user=alice), name="income", version="2", artifact=str(weights.pk)
            )
        request = services.promotion_request(
            workspace=acme, actor=Actor(user=alice), version=version, stage="production"
        )
        services.review(
            workspace=acme, actor=Actor(user=reviewers[0]), request_id=request.pk, approve=True, comment="ok"
        )
    stages = dict(ModelVersion.objects.values_list("version", "stage"))
    assert stages == {"1": Stage.ARCHIVED, "2": Stage.PRODUCTION}
    # The archived version's old approvals no longer carry it to production: a new request is needed.
    archived = ModelVersion.objects.get(pk=registered.pk)
    decision = services.gate_check(
        workspace=acme, actor=Actor(user=alice), version=archived, stage="production"
    )
    assert decision.passed is False
    assert "no open promotion request" in decision.statement["rules"][0]["reason"]
    current = ModelVersion.objects.get(version="2")
    assert services.gate_check(
        workspace=acme, actor=Actor(user=alice), version=current, stage="production"
    ).passed


@pytest.mark.slow
@pytest.mark.usefixtures("postgres_only")
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_approvals_make_exactly_one_transition():
    from tests.factories import make_user, make_workspace

    owner = make_user("owner")
    workspace = make_workspace("race", admin=owner)
    author = make_member(workspace, Role.DATA_SCIENTIST, "author")
    one, two = (make_member(workspace, Role.COMPLIANCE_REVIEWER, n) for n in ("one", "two"))
    import skops.io as sio
    from sklearn.dummy import DummyClassifier

    weights = store_bytes(workspace, author, sio.dumps(DummyClassifier().fit([[0]], [0])), "m.skops")
    version = services.version_register(
        workspace=workspace, actor=Actor(user=author), name="m", version="1", artifact=str(weights.pk)
    )
    upload_one_approval_policy(workspace, owner)
    request = services.promotion_request(
        workspace=workspace, actor=Actor(user=author), version=version, stage="production"
    )
    barrier = threading.Barrier(2)
    results: list[str] = []

    def approve(user) -> None:
        try:
            barrier.wait()
            try:
                reviewed, _ = services.review(
                    workspace=workspace,
                    actor=Actor(user=user),
                    request_id=request.pk,
                    approve=True,
                    comment="go",
                )
                results.append(reviewed.state)
            except ApplicationError as error:
                results.append(f"refused {error.status}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=approve, args=(u,)) for u in (one, two)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["completed", "refused 409"], results
    assert AuditEvent.objects.filter(workspace=workspace, action="model.stage").count() == 1
    assert PromotionRequest.objects.get(pk=request.pk).state == "completed"
    assert ModelVersion.objects.get(pk=version.pk).stage == Stage.PRODUCTION


def test_public_key_is_served_and_decisions_verify(acme, alice, registered):
    from mlgov.client import verify_decision

    key = bearer(make_token(acme, alice, ["gate:check"])).get(reverse("gate-public-key")).json()
    assert key["algorithm"] == "Ed25519"
    assert key["key_id"] == signing.key_id()
    client = bearer(make_token(acme, alice, ["gate:check"]))
    decision = client.post(
        reverse("model-gate", kwargs={"name": "income", "version": "1"}), {"stage": "staging"}, format="json"
    ).json()
    assert verify_decision(decision, key["public_key"])


@pytest.mark.django_db
def test_a_gate_check_whose_evidence_changes_while_it_evaluates_is_decided_on_the_new_evidence(
    acme, alice, registered, monkeypatch
):
    """The check evaluates and signs before locking the audit head; a change that commits in between
    moves the evidence sequence, and the decision must then be made again on the new evidence (not
    signed for a sequence whose evidence it never saw)."""
    from core.models import Workspace
    from governance.services import promotion

    upload_one_approval_policy(acme, alice)
    unlocked = promotion._evaluated_unlocked

    def with_a_request_opened_meanwhile(workspace, actor, version, stage):
        found = unlocked(workspace, actor, version, stage)
        services.promotion_request(workspace=acme, actor=Actor(user=alice), version=registered, stage=stage)
        return found

    monkeypatch.setattr(promotion, "_evaluated_unlocked", with_a_request_opened_meanwhile)
    before = Workspace.objects.get(pk=acme.pk).evidence_seq
    stored_before = set(GateDecision.objects.values_list("pk", flat=True))
    decision = services.gate_check(
        workspace=acme, actor=Actor(user=alice), version=registered, stage="production"
    )
    reasons = [r["reason"] for r in decision.statement["rules"] if r["passed"] is False]
    assert not any("no open promotion request" in reason for reason in reasons), reasons
    assert decision.statement["evidence_seq"] > before
    # The decision made on the old evidence (stored before the lock) is gone: one decision, the new one.
    assert set(GateDecision.objects.values_list("pk", flat=True)) - stored_before == {decision.pk}
    assert signing.verify(decision.statement, decision.signature, signing.public_key_document()["public_key"])
    # Without the change in between, the same check is decided on the sequence it read.
    monkeypatch.setattr(promotion, "_evaluated_unlocked", unlocked)
    again = services.gate_check(
        workspace=acme, actor=Actor(user=alice), version=registered, stage="production"
    )
    assert again.statement["evidence_seq"] == Workspace.objects.get(pk=acme.pk).evidence_seq
    assert again.statement["rules"] == decision.statement["rules"]


@pytest.mark.usefixtures("postgres_only")
@pytest.mark.django_db(transaction=True)
def test_on_postgresql_a_gate_check_outside_a_transaction_stores_and_appends_in_one_statement(
    acme, alice, registered, monkeypatch
):
    """A request's gate check on PostgreSQL: the decision and its audit event are written by one
    statement; if the evidence moved while it evaluated, nothing of that first evaluation is written
    and the check is decided again on the new evidence; a row past the head refuses it whole."""
    from core.audit import AuditChainBroken, audit_verify, one_statement_append_available
    from core.models import Workspace
    from governance.services import promotion

    assert one_statement_append_available()
    upload_one_approval_policy(acme, alice)
    statements = []

    def counted(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connections["default"].execute_wrapper(counted):
        first = services.gate_check(
            workspace=acme, actor=Actor(user=alice), version=registered, stage="staging"
        )
    writes = [sql for sql in statements if not sql.lstrip().upper().startswith("SELECT")]
    assert len(writes) == 1, writes
    assert "INSERT INTO" in writes[0]
    assert "FOR NO KEY UPDATE" in writes[0]
    event = AuditEvent.objects.get(workspace=acme, action="gate.check")
    assert event.payload["decision"] == str(first.pk)
    assert GateDecision.objects.get(pk=first.pk).statement == first.statement
    assert signing.verify(first.statement, first.signature, signing.public_key_document()["public_key"])
    head = Workspace.objects.get(pk=acme.pk)
    assert (head.audit_head_seq, head.audit_head_hash) == (event.seq, event.hash)
    assert head.evidence_seq == first.statement["evidence_seq"] == event.seq - 1  # a read moves no evidence

    # The evidence moves while the check evaluates (once): decided again, one decision stored.
    unlocked = promotion._evaluated_unlocked
    opened = []

    def with_a_request_opened_meanwhile(workspace, actor, version, stage):
        found = unlocked(workspace, actor, version, stage)
        if not opened:
            opened.append(
                services.promotion_request(
                    workspace=acme, actor=Actor(user=alice), version=registered, stage=stage
                )
            )
        return found

    monkeypatch.setattr(promotion, "_evaluated_unlocked", with_a_request_opened_meanwhile)
    before = set(GateDecision.objects.values_list("pk", flat=True))
    second = services.gate_check(
        workspace=acme, actor=Actor(user=alice), version=registered, stage="production"
    )
    reasons = [r["reason"] for r in second.statement["rules"] if r["passed"] is False]
    assert opened
    assert not any("no open promotion request" in reason for reason in reasons), reasons
    assert set(GateDecision.objects.values_list("pk", flat=True)) - before == {second.pk}
    assert AuditEvent.objects.filter(workspace=acme, action="gate.check").count() == 2
    assert audit_verify(workspace=acme).intact

    # A row the service did not write lies past the head: refused, and nothing is stored.
    monkeypatch.setattr(promotion, "_evaluated_unlocked", unlocked)
    head = Workspace.objects.get(pk=acme.pk)
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "INSERT INTO core_auditevent (workspace_id, seq, created_at, actor, action, target, payload, "
            "prev_hash, hash) VALUES (%s, %s, now(), 'x', 'forged', '', '{}', %s, '0')",
            [acme.pk, head.audit_head_seq + 1, head.audit_head_hash],
        )
    stored = GateDecision.objects.count()
    with pytest.raises(AuditChainBroken):
        services.gate_check(workspace=acme, actor=Actor(user=alice), version=registered, stage="staging")
    assert GateDecision.objects.count() == stored
