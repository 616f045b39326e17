"""Panel tokens in the browser: asked once, kept in localStorage, a clear message when refused."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Page, expect

from tests.browser import SCREENSHOTS
from tests.helpers import HubRig, fast_config, hub_config

pytest_plugins = ["tests.browser"]
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

PROJECTOR = {"driver": "pjlink", "name": "Projector", "transport": "tcp://127.0.0.1:4352"}
CONFIG = {
    "hub": {"admin_token": "the-admin-token"},
    "rooms": {
        "vault": {"name": "Vault", "panel_tokens": ["vault-token"], "devices": {"proj": PROJECTOR}},
        "lobby": {"name": "Lobby", "panel_tokens": ["lobby-token"], "devices": {"proj": PROJECTOR}},
    },
}
TOKEN_KEY = "avhub.token.vault"


@pytest_asyncio.fixture(loop_scope="module")
async def rig() -> AsyncIterator[HubRig]:
    rig = await HubRig(fast_config(hub_config(CONFIG))).start()
    yield rig
    await rig.close()


async def enter_token(page: Page, token: str) -> None:
    await page.locator("#token-input").fill(token)
    await page.locator("#token-form button[type=submit]").click()


async def connected(page: Page) -> None:
    await expect(page.locator("#token-prompt")).to_be_hidden()
    await expect(page.locator("body")).to_have_attribute("data-sync", "ok")
    await expect(page.locator('article.card[data-device="proj"]')).to_be_visible()


async def test_the_panel_asks_refuses_a_wrong_token_and_takes_the_right_one(
    rig: HubRig, page: Page
) -> None:
    await page.goto(rig.url("/rooms/vault"))
    prompt = page.locator("#token-prompt")
    message = page.locator("#token-message")
    await expect(prompt).to_be_visible()
    await expect(message).to_have_text(
        "This room needs a panel token. Enter the token for this room."
    )
    await expect(page.locator("article.card")).to_have_count(0)

    await enter_token(page, "lobby-token")  # a real token, of another room
    await expect(prompt).to_be_visible()
    await expect(message).to_have_text("That panel token was refused. Check it and enter it again.")
    assert await page.evaluate(f"localStorage.getItem('{TOKEN_KEY}')") is None
    await expect(page.locator("article.card")).to_have_count(0)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / "token-refused-1280x800.png")

    await enter_token(page, "vault-token")
    await connected(page)
    assert await page.evaluate(f"localStorage.getItem('{TOKEN_KEY}')") == "vault-token"

    await page.reload()  # asked once: the stored token is used from now on
    await connected(page)
    assert await page.evaluate("avhub.stats.refusals") == 0


async def test_a_token_in_the_url_is_stored_and_removed_from_the_address(
    rig: HubRig, page: Page
) -> None:
    await page.goto(rig.url("/rooms/vault?token=vault-token"))
    await connected(page)
    assert page.url == rig.url("/rooms/vault")
    assert await page.evaluate(f"localStorage.getItem('{TOKEN_KEY}')") == "vault-token"


async def test_the_admin_token_opens_every_room(rig: HubRig, page: Page) -> None:
    await page.goto(rig.url("/rooms/lobby?token=the-admin-token"))
    await connected(page)


async def test_a_stored_token_that_stopped_working_is_refused_visibly(
    rig: HubRig, page: Page
) -> None:
    await page.goto(rig.url("/"))
    await page.evaluate(f"localStorage.setItem('{TOKEN_KEY}', 'revoked-token')")
    await page.goto(rig.url("/rooms/vault"))
    await expect(page.locator("#token-prompt")).to_be_visible()
    await expect(page.locator("#token-message")).to_contain_text("refused")
    await expect(page.locator("#banner")).to_be_hidden()
