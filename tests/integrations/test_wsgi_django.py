"""The WSGI middleware around a real Django application, served by waitress on 127.0.0.1."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from callmetrics import Analytics
from callmetrics.integrations.wsgi import CallmetricsMiddleware
from conftest import missing_module

try:
    import django
    from django.conf import settings
    from django.http import HttpRequest, HttpResponse
    from django.urls import include, path, re_path
    from django.views.decorators.http import require_GET

    from web_helpers import recorded, send_at_once, waitress_serving
except ImportError as exc:
    missing_module(exc, "the Django test serves a Django app with waitress")


def user(request: HttpRequest, uid: int) -> HttpResponse:
    return HttpResponse(f"user {uid}", status=200 if uid < 50 else 404)


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("view failed")


def unavailable(request: HttpRequest) -> HttpResponse:
    return HttpResponse("down", status=503)


def item(request: HttpRequest, name: str) -> HttpResponse:
    return HttpResponse(name)


def archive(request: HttpRequest, year: str) -> HttpResponse:
    return HttpResponse(year)


# This module is the project's ROOT_URLCONF.
urlpatterns = [
    path("users/<int:uid>", require_GET(user)),
    path("boom", boom),
    path("unavailable", unavailable),
    path("api/", include([path("items/<slug:name>", item)])),
    re_path(r"^archive/(?P<year>[0-9]{4})/$", archive),
]


@pytest.fixture
def served() -> Iterator[tuple[str, Analytics, CallmetricsMiddleware]]:
    """Django's own WSGI handler, wrapped as a project's ``wsgi.py`` would, under waitress."""
    if not settings.configured:
        settings.configure(DEBUG=False, SECRET_KEY="test only",  # noqa: S106  # no secret: a test app
                           ROOT_URLCONF=__name__,
                           ALLOWED_HOSTS=["127.0.0.1"], INSTALLED_APPS=[], MIDDLEWARE=[],
                           DATABASES={}, TEMPLATES=[], LOGGING_CONFIG=None)
        django.setup()
    from django.core.wsgi import get_wsgi_application  # noqa: PLC0415  # after the settings

    analytics = Analytics()
    application = CallmetricsMiddleware(get_wsgi_application(), analytics)
    with waitress_serving(application) as url:
        yield url, analytics, application


def test_each_request_is_one_call_named_by_its_django_route(
        served: tuple[str, Analytics, CallmetricsMiddleware]) -> None:
    url, analytics, middleware = served
    requests = (
        [("GET", f"/users/{i}") for i in range(60)]
        + [("GET", "/boom")] * 4
        + [("GET", "/unavailable")] * 6
        + [("GET", f"/api/items/n{i}") for i in range(7)]
        + [("GET", f"/archive/{2000 + i}/") for i in range(3)]
        + [("GET", f"/nowhere/{i}") for i in range(9)]
        + [("DELETE", "/users/3")] * 2  # refused by the view: 405, named by the route
    )
    statuses = send_at_once(url, requests)
    recorded(analytics, len(requests))
    assert statuses == {200: 50 + 7 + 3, 404: 10 + 9, 500: 4, 503: 6, 405: 2}
    assert analytics.call_counts == {
        "GET /users/{uid}": 60,
        "GET /boom": 4,
        "GET /unavailable": 6,
        "GET /api/items/{name}": 7,  # a route inside include()
        "GET /archive/{year}/": 3,  # a re_path route
        "GET <unmatched>": 9,
        "DELETE /users/{uid}": 2,
    }
    assert middleware.status_counts[("GET /users/{uid}", 404)] == 10
    assert middleware.status_counts[("DELETE /users/{uid}", 405)] == 2
    failed = Counter((call.name, call.message) for call in analytics.retained() if call.error)
    assert failed == {("GET /boom", "500 Internal Server Error"): 4,
                      ("GET /unavailable", "503 Service Unavailable"): 6}
    assert analytics.success_counts["GET /users/{uid}"] == 60  # a 404 is not a failure
