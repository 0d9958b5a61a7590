"""The privacy-budget ledger: one budget per dataset version, and every release made against it."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from core.models import Workspace
from core.work import Work
from lineage.models import Node


class PrivacyBudget(models.Model):
    """Total and spent epsilon/delta of one dataset version. Spending locks this row."""

    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="privacy_budgets")
    dataset_node = models.OneToOneField(Node, on_delete=models.PROTECT, related_name="privacy_budget")
    epsilon_total = models.FloatField()
    delta_total = models.FloatField(default=0.0)
    epsilon_spent = models.FloatField(default=0.0)
    delta_spent = models.FloatField(default=0.0)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"budget of {self.dataset_node.key}: {self.epsilon_spent}/{self.epsilon_total}"

    @property
    def epsilon_left(self) -> float:
        return max(self.epsilon_total - self.epsilon_spent, 0.0)

    @property
    def delta_left(self) -> float:
        return max(self.delta_total - self.delta_spent, 0.0)


class PrivacyRelease(Work):
    """A differentially private statistic of a dataset version, its budget spent when it was asked for.
    Large releases are background work (task `privacy.compute_release`); a failure gives the budget back."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="privacy_releases")
    dataset_node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="+")
    query_hash = models.CharField(max_length=64)
    query = models.JSONField()
    mechanism = models.CharField(max_length=20)
    epsilon = models.FloatField()
    delta = models.FloatField(default=0.0)
    scale = models.FloatField(null=True, blank=True)
    # What is published (`value`): the mechanism's output post-processed so that people do not
    # misread it (counts never below zero), which costs no privacy; `raw_value` is the output itself.
    value = models.JSONField(null=True, blank=True)
    raw_value = models.JSONField(null=True, blank=True)
    accuracy = models.JSONField(null=True, blank=True)
    node = models.ForeignKey(Node, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # The same query about the same data is answered once: asking again costs nothing and
            # returns the same noisy value, so repeating cannot average the noise away.
            models.UniqueConstraint(fields=["dataset_node", "query_hash"], name="privacy_release_once"),
        ]

    def __str__(self) -> str:
        return f"{self.query.get('statistic')} of {self.dataset_node.key} (eps {self.epsilon})"

    work_task = "privacy.compute_release"

    @property
    def work_kind(self) -> str:
        return "privacy.release"

    @property
    def work_target(self) -> str:
        return f"dataset:{self.dataset_node.key}"

    def on_failed(self) -> dict:
        """Give back the budget the release reserved: nothing was released."""
        budget = PrivacyBudget.objects.select_for_update().get(dataset_node_id=self.dataset_node_id)
        budget.epsilon_spent = max(budget.epsilon_spent - self.epsilon, 0.0)
        budget.delta_spent = max(budget.delta_spent - self.delta, 0.0)
        budget.updated_at = timezone.now()
        budget.save(update_fields=["epsilon_spent", "delta_spent", "updated_at"])
        return {"release": str(self.pk), "refunded": {"epsilon": self.epsilon, "delta": self.delta}}
