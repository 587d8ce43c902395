"""social_site's routes, and `refresh/`: the app renews its tokens with the library's own call,
`UserSocialAuth.refresh_token(strategy)`, and shows whether the refresh token rotated or the refusal."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.views.decorators.http import require_POST
from social_core.exceptions import SocialAuthBaseException
from social_django.utils import load_strategy

from social_site import urls


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", {"title": "social-auth-app-django",
                                         "login_url": reverse("social:begin", args=["oidc"]), "login_by_post": True,
                                         "logout_url": reverse("logout"), "refresh_url": reverse("refresh")})


@require_POST
@login_required
def refresh(request: HttpRequest) -> HttpResponse:
    social = request.user.social_auth.get(provider="oidc")
    before = social.extra_data.get("refresh_token")
    try:
        social.refresh_token(load_strategy(request))
    except SocialAuthBaseException as error:
        outcome = f"refused ({type(error).__name__})"
    else:
        social.refresh_from_db()
        after = social.extra_data.get("refresh_token")
        outcome = "rotated" if before and after and after != before else "not rotated"
    return HttpResponse(f'<!doctype html><title>refresh</title><p id="refresh-outcome">{outcome}</p>')


urlpatterns = [
    path("", home),
    path("refresh/", refresh, name="refresh"),
    *urls.urlpatterns[1:],
]
