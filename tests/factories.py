"""Plain factory functions for the models the tests need."""

from __future__ import annotations

import itertools

from django.contrib.auth import get_user_model

from core.actors import SYSTEM, Actor
from core.models import Membership, Workspace
from core.tokens import api_token_create
from core.workspaces import workspace_create

_seq = itertools.count(1)
PASSWORD = "correct-horse-battery-staple"


def make_user(username: str | None = None, **extra):
    username = username or f"user{next(_seq)}"
    return get_user_model().objects.create_user(username=username, password=PASSWORD, **extra)


def make_workspace(slug: str | None = None, *, admin=None) -> Workspace:
    slug = slug or f"ws{next(_seq)}"
    return workspace_create(slug=slug, name=slug.title(), actor=SYSTEM, admin=admin)


def make_member(workspace: Workspace, role: str, username: str | None = None):
    user = make_user(username)
    Membership.objects.create(workspace=workspace, user=user, role=role)
    return user


def make_token(workspace: Workspace, user, scopes: list[str], days: int | None = None) -> str:
    _, raw = api_token_create(
        workspace=workspace,
        actor=Actor(user=user),
        user=user,
        name="test",
        scopes=scopes,
        expires_in_days=days,
    )
    return raw
