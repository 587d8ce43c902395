"""The quick start's route (`oidc/`), the page that shows who is signed in, and a health check for the
test's start-up wait."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import include, path, reverse


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", {"title": "mozilla-django-oidc",
                                         "login_url": reverse("oidc_authentication_init"),
                                         "logout_url": reverse("oidc_logout")})


def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("", home),
    path("healthz", healthz),
    path("oidc/", include("mozilla_django_oidc.urls")),
]
