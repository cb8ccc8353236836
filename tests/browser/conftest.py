"""Playwright driving Debian's Chromium (no browser download: see README.md)."""

from __future__ import annotations

import os
import shutil

import pytest

# The real local services, for browser tests that need a cluster or a store.
from tests.integration.conftest import devenv, kube_a, minio_bucket, minio_s3  # noqa: F401

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]

# Playwright's sync API runs an event loop in this thread; the test's own ORM
# calls are still synchronous, so Django's async-safety guard must stand aside.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="module")
def browser():
    if not shutil.which(CHROMIUM):
        pytest.fail(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def log_in(page):
    def _log_in(username: str, password: str):
        page.context.clear_cookies()
        page.goto("/accounts/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url("**/")

    return _log_in


@pytest.fixture
def worker():
    """A real Celery worker in a thread, on an in-memory broker."""
    import kombu.pools
    from celery.contrib.testing.worker import start_worker

    from palette_site.celery import app

    def use_broker(url):
        # The app caches its connection and producer pools: drop them with the URL.
        app.conf.broker_url = url
        app._pool = None
        app.amqp._producer_pool = None
        kombu.pools.reset()  # kombu's registries of connection and producer pools

    previous = app.conf.broker_url
    use_broker("memory://")
    try:
        with start_worker(app, perform_ping_check=False, pool="threads", concurrency=2):
            yield
    finally:
        use_broker(previous)
