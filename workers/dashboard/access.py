"""Who may open the dashboard: staff only.

Anonymous visitors are sent to the admin's login form (`?next=` brings them back); a logged-in user
who is not staff gets a 403 page that says so, not a login loop. End users' pages (/jobs/<id>/) send
anonymous visitors to LOGIN_URL instead (/accounts/login/), whose form takes any active user.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import render, resolve_url

View = Callable[..., HttpResponseBase]

# Staff log in through the admin's form.
STAFF_LOGIN_URL = "admin:login"


def login_redirect(request: HttpRequest, login_url: str | None = None) -> HttpResponseBase:
    """302 to a login form (default LOGIN_URL, the end users' one), coming back to this page afterwards."""
    return redirect_to_login(request.get_full_path(), resolve_url(login_url or settings.LOGIN_URL))


def staff_only(view: View) -> View:
    """Login redirect for anonymous users, 403 "Staff only" for others who are not staff."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        user = request.user
        if not user.is_authenticated:
            return login_redirect(request, STAFF_LOGIN_URL)
        if not (user.is_active and user.is_staff):
            return render(request, "dashboard/staff_only.html", status=403)
        return view(request, *args, **kwargs)

    return wrapper
