"""The dashboard in headless Chromium: it loads, shows the numbers the API shows, and approve / reject work with
the token the operator pastes (kept in localStorage); a wrong token is answered, not obeyed."""

from __future__ import annotations

import asyncio
import os

import httpx
import pytest

from tests.integration.test_gateway_process import gateway_process
from tests.integration.test_projector_scenario import ATTENTION, FLAGGED, FLAGGED_CLAIM, TOKEN, did, scenario

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
HAVE_CHROMIUM = os.path.exists(CHROMIUM)


async def test_dashboard_shows_the_api_numbers_and_approve_works(bus, namespace, nats_url, database_url,
                                                                 tmp_path) -> None:
    if not HAVE_CHROMIUM:
        pytest.skip(f"no Chromium at {CHROMIUM}")
    from playwright.async_api import async_playwright

    await bus.publish_many(scenario())
    async with gateway_process(nats_url, namespace, database_url, tmp_path / "gateway.log") as base, \
            httpx.AsyncClient(base_url=base, timeout=10) as api, async_playwright() as pw:
        metrics = (await api.get("/api/metrics")).json()
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                           args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(base + "/", wait_until="load")
            assert await page.title() == f"xbot · live · queue {metrics['queueSize']}"
            for key in ("queueSize", "postsAttempted", "postsPosted", "outcomesWritten", "openaiCalls_total",
                        "openaiCalls_failed", "learnRuns", "predictorVersion"):
                assert (await page.text_content(f"#metric-{key}")).strip() == str(metrics[key]), key
            assert (await page.text_content("#mode")).strip() == "live"
            links = page.locator("#posts a[href^='https://x.com/']")
            assert sorted(await links.all_text_contents()) == ["180000000000000000", "181000000000000000"]
            assert await page.locator("svg.chart circle").count() == 3  # the three outcomes (one at +0.25 h)
            assert await page.locator("svg.chart rect").count() >= 3  # arms and slots
            assert await page.locator("#queue tr[data-decision]").count() == metrics["queueSize"]
            # the approval view: the sentence the account's facts do not hold, highlighted in the draft
            marks = page.locator(f"#queue tr[data-decision='{did(FLAGGED)}'] mark.claim")
            assert await marks.all_text_contents() == [FLAGGED_CLAIM, FLAGGED_CLAIM]  # in the text and listed
            assert await marks.first.is_visible()
            assert (await page.text_content("#metric-flaggedClaimsPending")).strip() == str(
                metrics["flaggedClaimsPending"]) == "1"
            # the attempt in doubt past the limit: a visible panel with both answers (and no retry without a look)
            assert metrics["attentionNeeded"] == 1 and await page.locator("#attention").is_visible()
            panel = page.locator(f"#attention tr[data-attention='{did(ATTENTION)}']")
            assert await panel.count() == 1
            assert await panel.locator("button[data-resolve='retry']").is_visible()
            assert await panel.locator("button[data-resolve='abandon']").is_visible()
            assert (await page.text_content("#metric-attentionNeeded")).strip() == "1"

            # a wrong token: answered with 401, nothing changes
            await page.fill("#token", "not-the-token")
            await page.click("#save-token")
            row = page.locator(f"#queue tr[data-decision='{did(1)}']")
            await row.locator("button[data-action='approve']").click()
            await page.wait_for_selector("#toast.error", timeout=5000)
            assert "401" in await page.text_content("#toast")
            assert (await api.get(f"/api/decisions/{did(1)}")).json()["decision"]["approval"] is None

            # the right token, kept in localStorage across the reload
            await page.fill("#token", TOKEN)
            await page.click("#save-token")
            async with page.expect_navigation(timeout=10000):
                await row.locator("button[data-action='approve']").click()
            assert await page.evaluate("localStorage.getItem('xbotAdminToken')") == TOKEN
            assert await page.input_value("#token") == TOKEN
            tag = page.locator(f"#queue tr[data-decision='{did(1)}'] .approval")
            assert (await tag.text_content()).strip() == "approved"
            assert (await api.get(f"/api/decisions/{did(1)}")).json()["decision"]["approval"] == "approved"

            # reject leaves the queue; the page and the API agree on the new size
            async with page.expect_navigation(timeout=10000):
                await page.locator(f"#queue tr[data-decision='{did(2)}'] button[data-action='reject']").click()
            assert await page.locator(f"#queue tr[data-decision='{did(2)}']").count() == 0
            now = (await api.get("/api/metrics")).json()
            assert now["queueSize"] == metrics["queueSize"] - 1
            assert (await page.text_content("#metric-queueSize")).strip() == str(now["queueSize"])

            # retry asks first: dismissed, nothing is sent
            retry = page.locator(f"#attention tr[data-attention='{did(ATTENTION)}'] button[data-resolve='retry']")
            page.once("dialog", lambda d: asyncio.ensure_future(d.dismiss()))
            await retry.click()
            await page.wait_for_selector("#toast.error", timeout=5000)
            assert "not sent" in await page.text_content("#toast")
            assert (await api.get(f"/api/decisions/{did(ATTENTION)}")).json()["decision"]["status"] == "in_doubt"
            # confirmed: the answer is sent, the panel is gone and the decision is queued again
            page.once("dialog", lambda d: asyncio.ensure_future(d.accept()))
            async with page.expect_navigation(timeout=10000):
                await retry.click()
            assert await page.locator("#attention").count() == 0
            row = (await api.get(f"/api/decisions/{did(ATTENTION)}")).json()["decision"]
            assert (row["status"], row["attention_reason"]) == ("queued", None)
            assert not errors, errors
        finally:
            await browser.close()
