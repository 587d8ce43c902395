"""The documentation's routes (social_django's `login/<backend>/` and `complete/<backend>/`), Django's
own logout, the page that shows who is signed in, and a health check for the test's start-up wait."""
from __future__ import annotations

from django.contrib.auth.views import LogoutView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import include, path, reverse


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", {"title": "social-auth-app-django",
                                         "login_url": reverse("social:begin", args=["oidc"]),
                                         "login_by_post": True,   # social_django's begin takes a POST (CSRF)
                                         "logout_url": reverse("logout")})


def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("", home),
    path("healthz", healthz),
    path("logout/", LogoutView.as_view(), name="logout"),
    path("", include("social_django.urls", namespace="social")),
]
