"""What operators see, read through a real browser: Debian's chromium driven by Playwright
(`executable_path`, never a downloaded browser) against `arrears up` running the demo story.

- the Temporal Web UI lists the accounts a search-attribute filter selects;
- an account's Current Details in the Web UI say what its `status` query says;
- the portfolio page's totals are the counts Temporal visibility gives for the same filters;
- the ingress documentation (/docs) renders with no request leaving the machine.
"""
from __future__ import annotations

import asyncio
import re
import tempfile
import time
import urllib.parse
from pathlib import Path

import pytest

from infra.converter import data_converter
from ingress import portfolio
from tests.test_stack import Stack

CHROMIUM = Path("/usr/bin/chromium")
# As root, in a sandbox with no network beyond package registries (see the machine notes):
# without these, chromium tries Google's services at every start.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
SECONDS_PER_DAY = 1.0


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """`arrears up` with the first 12 demo accounts (every part of the story) and one per playbook,
    1 s per day."""
    stack = Stack(tmp_path_factory.mktemp("webui"))
    stack.start("--accounts", "12", "--seconds-per-day", str(SECONDS_PER_DAY))
    try:
        stack.wait_until("the stack is up", lambda: "Arrears is up." in stack.text(), 180)
        # DEMO-007 is placed at 75 days past due, five collection days in.
        stack.wait_until("DEMO-007 placed", lambda: "account-DEMO-007" in stack.workflows_where(
            'ArrearsStage="placed"'), 120)
        yield stack
    finally:
        stack.kill_everything()


@pytest.fixture(scope="module")
async def browser():
    assert CHROMIUM.exists(), ("Debian's chromium is not installed; run "
                               "`apt-get install -y --no-install-recommends chromium` (CI's .ci/run does)")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        yield chromium
        await chromium.close()


@pytest.fixture(scope="module")
async def client(demo):
    from temporalio.client import Client

    return await Client.connect(f"127.0.0.1:{demo.temporal_port}", data_converter=data_converter())


async def _page(browser):
    return await browser.new_page(viewport={"width": 1366, "height": 768})   # a laptop screen


async def test_filtered_workflow_list_in_the_web_ui(demo, browser) -> None:
    query = 'WorkflowType="AccountCollection" AND ExecutionStatus="Running" AND ArrearsStage="placed"'
    page = await _page(browser)
    await page.goto(f"http://localhost:{demo.ui_port}/namespaces/default/workflows?query={urllib.parse.quote(query)}")
    await page.get_by_role("link", name="account-DEMO-007").wait_for(timeout=60_000)
    listed = set(re.findall(r"account-DEMO-\d{3}", await page.inner_text("body")))
    # What visibility returns for the same filter (placement is for good in this story).
    expected = set(re.findall(r"account-DEMO-\d{3}", demo.workflows_where('ExecutionStatus="Running" AND '
                                                                          'ArrearsStage="placed"')))
    assert "account-DEMO-007" in listed and listed <= expected
    assert "account-DEMO-002" not in listed and "account-DEMO-003" not in listed
    await page.close()


async def test_each_playbook_account_is_found_by_its_policy_in_the_web_ui(demo, browser) -> None:
    """A newcomer picks a playbook and finds its demo account by `PolicyId` (README, "One account
    per playbook"): each filter lists that account and no other demo account."""
    from cli.demo_portfolio import PLAYBOOKS
    from policies import published

    page = await _page(browser)
    for p in PLAYBOOKS:
        policy_id, version = published.resolve(None, None, p.segment)   # what the demo started it with
        query = f'WorkflowType="AccountCollection" AND PolicyId="{policy_id}@v{version}"'
        await page.goto(f"http://localhost:{demo.ui_port}/namespaces/default/workflows"
                        f"?query={urllib.parse.quote(query)}")
        link = f"account-{p.account_id()}"
        await page.get_by_role("link", name=link).first.wait_for(timeout=60_000)   # one per run
        assert set(re.findall(r"account-DEMO-[A-Z0-9]+", await page.inner_text("body"))) == {link}, query
    await page.close()


async def test_current_details_match_the_status_query(demo, browser, client) -> None:
    """DEMO-007 is placed for good; its days past due grow by one every collection day (a second
    here), so the page's reading must lie between a `status` query before and one after it."""
    page = await _page(browser)
    handle = client.get_workflow_handle("account-DEMO-007")
    before = await handle.query("status")
    await _open_metadata(page, f"http://localhost:{demo.ui_port}/namespaces/default/workflows/account-DEMO-007")
    details = await _current_details(page)
    after = await handle.query("status")
    m = re.search(r"(\S+) · (\d+) days past due on (\S+) · oldest unpaid due (\S+) · (.+?) due · (.+?) outstanding",
                  details)
    assert m, details
    stage, dpd, on, oldest, due, outstanding = m.group(1), int(m.group(2)), m.group(3), m.group(4), m.group(5), m.group(6)
    assert stage == before["stage"] == after["stage"] == "placed"
    # The account does not wake daily: the details say on which day their days past due are true.
    from datetime import date

    assert oldest == after["oldest_unpaid_due_date"]
    assert dpd == (date.fromisoformat(on) - date.fromisoformat(oldest)).days <= after["days_past_due"]
    # Charges accrue daily: the details' money is true on their day, `status` on the instant it is
    # read (a collection day is a second here), so nothing being paid, the details show at most
    # what `after` shows, and at least its principal.
    def minor(text: str) -> int:
        return int(re.sub(r"[^0-9]", "", text))

    assert outstanding.split()[0] == after["currency"] and due.split()[0] == after["currency"]
    assert after["principal_outstanding"] <= minor(outstanding) <= after["total_outstanding"]
    assert minor(due) <= after["amount_due"]
    assert f"Policy {after['policy']} · lockout {after['lockout']['state']}" in details
    assert f"Next: {after['next_action'] or 'none'}" in details
    await page.close()


async def _current_details(page, timeout: float = 60) -> str:
    """The Current Details text. The Web UI renders the markdown in a sandboxed iframe."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for frame in page.frames:
            try:
                text = await frame.inner_text("body", timeout=1_000)
            except Exception:  # a frame that went away or has no body yet
                continue
            if re.search(r"\d+ days past due", text) and "Current Details" not in text:
                return re.sub(r"\s+", " ", text)
        await asyncio.sleep(0.5)
    raise AssertionError("no Current Details on the workflow page")


async def _open_metadata(page, workflow_url: str) -> None:
    """The workflow page's User Metadata tab (summary and current details). The page redirects
    to its run's timeline first; the tab has a URL of its own beside it."""
    await page.goto(workflow_url)
    try:
        await page.wait_for_url(re.compile(r"/timeline$|/history$"), timeout=90_000)
        await page.goto(re.sub(r"/(timeline|history)$", "/user-metadata", page.url))
        await page.get_by_text("Current Details", exact=True).first.wait_for(timeout=90_000)
    except Exception:
        await page.screenshot(path=str(Path(tempfile.gettempdir()) / "arrears-webui-failure.png"))
        raise


async def test_portfolio_totals_match_visibility_counts(demo, browser, client) -> None:
    # Authenticated like every route: the browser asks for the key (HTTP Basic, the key as password).
    import httpx

    async with httpx.AsyncClient() as anonymous:
        r = await anonymous.get(f"http://127.0.0.1:{demo.api_port}/portfolio", headers={"Accept": "text/html"})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
    key = (demo.data_dir / "secrets" / "dev-web-ui.key").read_text().strip()   # the read-only key
    context = await browser.new_context(viewport={"width": 1366, "height": 768},
                                        http_credentials={"username": "operations", "password": key})
    page = await context.new_page()
    for _ in range(10):
        running = (await client.count_workflows(portfolio.RUNNING)).count
        stages = {s: (await client.count_workflows(f'{portfolio.RUNNING} AND ArrearsStage="{s}"')).count
                  for s in ("current", "early", "mid", "late", "critical", "severe", "placed")}
        await page.goto(f"http://127.0.0.1:{demo.api_port}/portfolio?refresh=0")
        shown = int(await page.get_attribute("#total-running", "data-count"))
        rows = {await r.get_attribute("data-stage"): int(await r.locator("td[data-count]").get_attribute("data-count"))
                for r in await page.locator("#by-stage tr[data-stage]").all()}
        after = (await client.count_workflows(portfolio.RUNNING)).count
        after_stages = {s: (await client.count_workflows(f'{portfolio.RUNNING} AND ArrearsStage="{s}"')).count
                        for s in stages}
        if (running, stages) == (after, after_stages):   # nothing moved while the page was made
            break
        await asyncio.sleep(0.5)
    assert shown == running > 0
    assert {s: n for s, n in stages.items() if n} == {s: n for s, n in rows.items() if s in stages}
    # Readable on a laptop screen: no horizontal scrolling.
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await context.close()


async def test_documentation_renders_offline(demo, browser) -> None:
    path, ready = "/docs", ".swagger-ui .info .title"
    page = await _page(browser)
    outside: list[str] = []

    async def only_local(route):
        host = urllib.parse.urlsplit(route.request.url).hostname
        if host in ("127.0.0.1", "localhost"):
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort()

    await page.route("**/*", only_local)
    await page.goto(f"http://127.0.0.1:{demo.api_port}{path}")
    title = page.locator(ready).first
    await title.wait_for(timeout=30_000)
    assert "Arrears ingress" in await title.inner_text()
    assert outside == [], outside
    # The operations are listed, from the app's own OpenAPI document.
    await page.get_by_text("/portfolio.json").first.wait_for(timeout=10_000)
    await page.close()
