"""Debian's chromium driven by Playwright, for browser tests.

Playwright's own browser download cannot work here (`playwright install` fails), so this always
launches the system binary through `executable_path`, with a fresh profile per test.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def browser_unavailable_reason() -> str | None:
    """Why a browser test cannot run here, or None when it can."""
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        return f"{CHROMIUM} not found (apt-get install chromium)"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "Python package playwright not installed (pip install playwright)"
    return None


@asynccontextmanager
async def chromium_page(
    profile_dir: Path, viewport: tuple[int, int] = (1280, 900)
) -> AsyncIterator:
    """A Playwright Page in a fresh chromium profile at `profile_dir`; closed on exit."""
    from playwright.async_api import async_playwright

    profile_dir.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            user_data_dir=str(profile_dir),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": viewport[0], "height": viewport[1]},
        )
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            page.set_default_timeout(30_000)
            yield page
        finally:
            await context.close()


@pytest.fixture
async def browser_page(tmp_path: Path) -> AsyncIterator:
    """A Playwright (async) Page in headless Debian chromium with a profile in tmp_path."""
    reason = browser_unavailable_reason()
    if reason:
        # CI must have the browser: a skip there would hide a missing install step.
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    async with chromium_page(tmp_path / "chromium-profile") as page:
        yield page
