"""The browser tests' fixtures and checks: the system Chromium through Playwright.

Only the browser tests (tests/test_ui_*.py, marker `browser`) import this module, through
`pytest_plugins = ["tests.browser"]`; every other test runs without Playwright installed.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright

CHROMIUM = os.environ.get("AVHUB_CHROMIUM", "/usr/bin/chromium")
# A closed network: without the background-networking flags Chromium keeps dialling out.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"


def chromium_path() -> str:
    """The system Chromium; fails (never skips) the browser tests when it is missing."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"browser tests need Chromium at {CHROMIUM}: apt-get install chromium")
    return CHROMIUM


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    """The system Chromium, once per test module (tests use `loop_scope="module"`)."""
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=chromium_path(), args=CHROMIUM_ARGS, timeout=30_000
        )
        yield chromium
        await chromium.close()


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh page (own storage) at 1280x800; fails the test on any JavaScript error."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(5_000)
    tab = await context.new_page()
    errors: list[Exception] = []
    tab.on("pageerror", lambda error: errors.append(error))
    yield tab
    await context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


TARGET = 48  # px, the smallest touch target


async def touch_problems(page: Page) -> list[str]:
    """Controls smaller than 48x48 px, buttons whose text can be selected, horizontal overflow."""
    problems: list[str] = await page.evaluate(
        """(target) => {
          const out = [];
          for (const el of document.querySelectorAll("button, a.btn, input")) {
            const box = el.getBoundingClientRect();
            if (box.width === 0) continue;  // not displayed
            if (box.width < target || box.height < target) {
              out.push(`${el.outerHTML.slice(0, 60)} is ${box.width}x${box.height}`);
            }
            if (el.matches("button, a.btn") && getComputedStyle(el).userSelect !== "none") {
              out.push(`${el.outerHTML.slice(0, 60)} allows text selection`);
            }
          }
          const width = document.documentElement.scrollWidth;
          if (width > innerWidth) out.push(`page is ${width}px wide in a ${innerWidth}px window`);
          return out;
        }""",
        TARGET,
    )
    return problems
