"""The page behind an invitation's one-time link (core/invitation_links.py): a person without an
account chooses a password (and a username, when invited by e-mail address) and lands in the
workspace; a signed-in person accepts. A refused link answers 410 (used, withdrawn, expired) or 404
(unknown), and says so in words."""

from __future__ import annotations

from functools import wraps

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from core.errors import ApplicationError
from core.invitation_links import LinkRefused, link_open
from core.login import client_address
from core.workspaces import link_accept, link_sign_up

REFUSALS = {
    "unknown": (404, "This invitation link is not valid. Check that you copied all of it."),
    "used": (410, "This invitation link has been used already. Each link works once: sign in instead."),
    "withdrawn": (410, "This invitation was withdrawn by the workspace's administrators."),
    "expired": (410, "This invitation link has expired. Ask the workspace's administrator for a new one."),
}


class SignUpForm(forms.Form):
    username = forms.CharField(max_length=150, required=False)
    password = forms.CharField(widget=forms.PasswordInput, strip=False)
    password_again = forms.CharField(widget=forms.PasswordInput, strip=False)

    def clean(self):
        data = super().clean() or {}
        if data.get("password") and data.get("password") != data.get("password_again"):
            self.add_error("password_again", "The two passwords differ.")
        return data


def _joined(request, invitation):
    messages.success(request, f"You joined {invitation.workspace.name} as {invitation.get_role_display()}.")
    return redirect("dashboard-inventory", slug=invitation.workspace.slug)


def _post(request, invitation, form):
    """Sign up (anonymous) or accept (signed in); None when the form must be shown again."""
    if request.user.is_authenticated:
        link_accept(invitation_id=invitation.pk, user=request.user)
        return _joined(request, invitation)
    if not form.is_valid():
        return None
    user = link_sign_up(
        invitation_id=invitation.pk,
        username=form.cleaned_data["username"],
        password=form.cleaned_data["password"],
    )
    login(request, user, backend=settings.AUTHENTICATION_BACKENDS[0])
    return _joined(request, invitation)


def no_referrer(view):
    """The link's secret is in the address: no other site may learn it from the Referer. (Not
    `no-referrer`: with it Chromium sends `Origin: null` on the form's POST, which CSRF refuses.)"""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        response["Referrer-Policy"] = "same-origin"
        return response

    return wrapped


@no_referrer
@never_cache
@sensitive_post_parameters("password", "password_again")
def invitation_link(request, secret: str):
    try:
        invitation = link_open(secret, address=client_address(request))
    except LinkRefused as refused:
        status, message = REFUSALS[refused.reason]
        return render(request, "registration/invitation.html", {"refused": message}, status=status)
    bound = request.method == "POST" and not request.user.is_authenticated
    form = SignUpForm(request.POST if bound else None, initial={"username": invitation.username})
    problem = ""
    status = 200
    if request.method == "POST":
        try:
            answer = _post(request, invitation, form)
        except ApplicationError as error:
            field = error.errors[0].field if error.errors else None
            if bound:
                form.add_error(field if field in form.fields else None, error.detail)
            else:
                problem = error.detail
            answer = None
        if answer is not None:
            return answer
        status = 400
    context = {
        "invitation": invitation,
        "form": form,
        "problem": problem,
        "sign_in": f"{reverse('login')}?next={request.path}",
    }
    return render(request, "registration/invitation.html", context, status=status)
