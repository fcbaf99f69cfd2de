"""API authentication: Django's session cookie for browsers, `Authorization: Token <key>` for clients.

Tokens are stored as SHA-256 hashes (`ApiToken`); `manage.py create_api_token <username>` makes one.
Session-authenticated writes must pass Django's CSRF check; token requests carry no cookie and so
need none.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.utils import timezone

from workers.models import ApiToken, hash_token

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# last_used_at is written at most this often per token (seconds), not on every request.
LAST_USED_RESOLUTION = 60


class AuthFailed(Exception):
    """The request's credentials were refused."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _csrf_response(request: HttpRequest) -> HttpResponse | None:
    check = CsrfViewMiddleware(lambda req: HttpResponse())
    return check.process_view(request, lambda req: HttpResponse(), (), {})


def authenticate(request: HttpRequest) -> Any:
    """The user making the request; raises AuthFailed (401 or 403) otherwise."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "token" or not key.strip():
            raise AuthFailed(401, "use 'Authorization: Token <key>'")
        token = ApiToken.objects.select_related("user").filter(key_hash=hash_token(key.strip())).first()
        if token is None or not token.user.is_active:
            raise AuthFailed(401, "invalid token")
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        raise AuthFailed(401, "authentication required: log in or send 'Authorization: Token <key>'")
    if request.method not in SAFE_METHODS and _csrf_response(request) is not None:
        raise AuthFailed(403, "CSRF check failed: send the csrftoken cookie's value as X-CSRFToken")
    return user
