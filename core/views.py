"""Dashboard pages of the core app (the full dashboard arrives with its own issue)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.defaults import page_not_found
from django.views.defaults import server_error as html_server_error

from core.api.errors import api_not_found, api_server_error
from core.workspaces import workspaces_of_user


@login_required
def home(request):
    memberships = workspaces_of_user(user=request.user)
    return render(request, "core/home.html", {"memberships": memberships})


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return api_not_found(request, exception)
    return page_not_found(request, exception)


def server_error(request):
    if request.path.startswith("/api/"):
        return api_server_error(request)
    return html_server_error(request)
