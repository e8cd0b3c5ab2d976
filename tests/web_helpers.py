"""Shared helpers for page tests: an app on the test service, signing in, parsing pages."""
from __future__ import annotations

import lxml.html

from web import create_app


def make_app(service, **config):
    return create_app(service=service, config={"TESTING": True, "SECRET_KEY": "test-secret",
                                               "WTF_CSRF_ENABLED": False, **config})


def sign_in(client, email, password="test-password"):
    response = client.post("/sign-in", data={"email": email, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return response


def page(response):
    return lxml.html.fromstring(response.get_data(as_text=True))


def text_of(response) -> str:
    return " ".join(page(response).text_content().split())
