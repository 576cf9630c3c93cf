"""Test helpers for the agents' side: sign in to the console, create API keys."""

from __future__ import annotations

import re
from typing import Any

from ivr.accounts import create_agent, create_api_key

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = _CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def signed_in(app: Any, username: str = "amina", password: str = PASSWORD) -> Any:
    """A Flask test client signed in as a new agent."""
    store = app.extensions["ivr"].store
    if store.get_agent(username) is None:
        create_agent(store, username, password)
    client = app.test_client()
    page = client.get("/console/login")
    response = client.post("/console/login", data={
        "csrf_token": csrf_of(page.text), "username": username, "password": password,
    })
    assert response.status_code == 302, response.text
    return client


def api_headers(app: Any, name: str = "convox") -> dict[str, str]:
    """Authorization headers with a fresh API key."""
    key = create_api_key(app.extensions["ivr"].store, name)
    return {"Authorization": f"Bearer {key}"}
