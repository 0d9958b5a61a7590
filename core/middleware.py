"""Security headers for the dashboard: a strict Content-Security-Policy (everything from this
origin; no inline scripts: charts read their data from JSON blocks, which browsers do not run), and
no caching of what a signed-in person or a token holder is answered."""

from __future__ import annotations

from django.conf import settings

from core.artifacts import discard_request_spools


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = settings.CONTENT_SECURITY_POLICY

    def __call__(self, request):
        response = self.get_response(request)
        if self.policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = self.policy
        return response


class PrivateResponseMiddleware:
    """Answers to a signed-in person or a token holder are theirs alone: `Cache-Control: no-store`, so
    no browser cache or shared proxy keeps a page of evidence or a token after sign-out. Also deletes
    the spool files of a request's upload parts that nothing consumed, whatever refused the request
    (a missing CSRF token or scope is decided after the multipart body has been read)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            response = self.get_response(request)
        finally:
            discard_request_spools(request)
        # Decided from the request's credentials as sent, without a database read (which could fail).
        if "Cache-Control" not in response and (
            "HTTP_AUTHORIZATION" in request.META or settings.SESSION_COOKIE_NAME in request.COOKIES
        ):
            response["Cache-Control"] = "no-store"
        return response
