"""The console in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright)
against the sandbox: sign in by keyboard, map an unmapped client from its suggestion, set a
rate rule, see that client's invoice in the preview with the total computed from the seed,
approve it, then find the invoice in the fake Xero and the run in Runs. A screenshot of each
page goes to artifacts/console/ (gitignored; CI keeps it)."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest
import uvicorn
from sqlmodel import Session

from console.server import server, settings
from core.tables import OAuthConnectionRow
from sandbox.server import Sandbox
from tests.conftest import ROOT
from tests.console_helpers import (
    PASSWORD,
    PERIOD,
    PROFILE,
    ConsoleSetup,
    client_total,
    console_setup,
    oauth_console_setup,
)
from tests.helpers import live_invoices
from tests.oauth_helpers import CONNECTION, SharedClock, start_oauth_sandbox

CHROMIUM = Path(os.environ.get("HOURBRIDGE_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "artifacts" / "console"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"no Chromium at {CHROMIUM}: `apt-get install -y chromium` (.ci/run does it "
        "when run as root), or set HOURBRIDGE_CHROMIUM",
    ),
]


@contextmanager
def serving(setup: ConsoleSetup) -> Iterator[str]:
    """The console served by uvicorn on a free loopback port, in a thread, until the block
    ends; its base URL."""
    instance: uvicorn.Server = server(setup.loaded, setup.engine, settings(setup.loaded, None, 0))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    thread = threading.Thread(target=instance.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(200):  # started within a few ms; the bound is generous for a busy CI box
        if instance.started:
            break
        time.sleep(0.05)
    assert instance.started, "the console did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        instance.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def console_url(
    sandbox: Sandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tokens: None,
) -> Iterator[tuple[str, ConsoleSetup]]:
    """The console on the sandbox. SQLite only: the browser path is the same on PostgreSQL
    (test_console runs both)."""
    setup = console_setup(sandbox, f"sqlite:///{tmp_path / 'hb.db'}", tmp_path, monkeypatch)
    with serving(setup) as base:
        yield base, setup


def test_finance_user_maps_rates_previews_and_approves_in_chromium(
    console_url: tuple[str, ConsoleSetup], sandbox: Sandbox
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    base, _setup = console_url
    month = sandbox.month
    client_id = month.unmapped_client_ids[0]
    name = next(c["name"] for c in month.clients if c["id"] == client_id)
    contact = next(c for c in month.xero_contacts if c["Name"] == "WAITEMATĀ SAILING CLUB LIMITED")
    rate = Decimal("150")
    expected = client_total(month, client_id, rate)  # from the seed, at the new rate
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        page = browser.new_page(locale="en-NZ", viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        expect = sync_api.expect

        # 1. sign in, by keyboard only (the name field has the focus)
        page.goto(base + "/")
        expect(page.get_by_role("heading", name="Sign in to hourbridge")).to_be_visible()
        page.screenshot(path=ARTIFACTS / "1-login.png", full_page=True)
        page.keyboard.type("fiona")
        page.keyboard.press("Tab")
        page.keyboard.type(PASSWORD)
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        expect(page.get_by_text("fiona (finance)")).to_be_visible()
        page.screenshot(path=ARTIFACTS / "2-overview.png", full_page=True)

        # 2. map the unmapped client from its suggestion (the best match is preselected)
        page.goto(f"{base}/mappings?profile={PROFILE}&period={PERIOD}")
        choice = page.get_by_label(f"Target for {name}")
        expect(choice).to_have_value(contact["ContactID"])
        # the search box filters the target's whole contact list (htmx, vendored)
        other_id = month.unmapped_client_ids[1]
        other = next(c["name"] for c in month.clients if c["id"] == other_id)
        before = page.locator(f"#all-clients-{other_id} option").count()
        page.get_by_label("Search the target's list").nth(1).fill("agritech")
        expect(page.locator(f"#all-clients-{other_id} option").first).to_contain_text(
            re.compile("agritech", re.I)
        )
        after = page.locator(f"#all-clients-{other_id} option").count()
        assert 0 < after < before, (before, after, other)
        page.screenshot(path=ARTIFACTS / "3-mappings.png", full_page=True)
        page.get_by_role("button", name=f"Map {name}").click()
        expect(page.get_by_role("status").filter(has_text="stored version 2")).to_be_visible()
        expect(page.get_by_label(f"Target for {name}")).to_have_count(0)

        # 3. a rate rule for that client from the start of the period
        page.get_by_label("For a").first.select_option("client")
        page.locator("#rate-entity").fill(str(client_id))
        page.get_by_label("Hourly rate").fill(str(rate))
        page.get_by_label("From (optional)").fill(f"{PERIOD}-01")
        page.get_by_role("button", name="Add rate rule").click()
        expect(page.get_by_role("status").filter(has_text="stored version 3")).to_be_visible()
        expect(page.get_by_text(f"client {client_id} from {PERIOD}-01")).to_be_visible()
        page.screenshot(path=ARTIFACTS / "4-rate-rule.png", full_page=True)

        # 4. the preview shows that client's invoice with the expected total
        page.get_by_role("link", name="Preview", exact=True).click()
        invoice = page.get_by_label(f"Invoice for {contact['Name']}")
        expect(invoice.locator(".subtotal")).to_have_text(re.compile(rf"\$\s?{expected:,.2f}$"))
        expect(invoice.get_by_text("new", exact=True)).to_be_visible()
        page.screenshot(path=ARTIFACTS / "5-preview.png", full_page=True)

        # 5. approve: pushes the batch and shows the run
        page.get_by_role("button", name="Approve and push these invoices").click()
        expect(page.get_by_role("status").filter(has_text="approved and pushed")).to_be_visible()
        run_id = page.url.rsplit("/", 1)[1]
        page.screenshot(path=ARTIFACTS / "6-run.png", full_page=True)

        # 6. the invoice is in the fake Xero, and the run is in Runs
        ours = [
            i
            for i in live_invoices(sandbox.xero.invoices)
            if str(i["Contact"]["ContactID"]).lower() == contact["ContactID"].lower()
        ]
        assert len(ours) == 1 and Decimal(str(ours[0]["SubTotal"])) == expected
        page.get_by_role("link", name="Runs", exact=True).click()
        expect(page.get_by_role("link", name=run_id[:12])).to_be_visible()
        page.screenshot(path=ARTIFACTS / "7-runs.png", full_page=True)
        page.get_by_role("link", name="Connections", exact=True).click()
        expect(page.get_by_role("heading", name="Connections")).to_be_visible()
        page.screenshot(path=ARTIFACTS / "8-connections.png", full_page=True)
        browser.close()
    for shot in ("1-login", "2-overview", "3-mappings", "5-preview", "6-run", "7-runs"):
        assert (ARTIFACTS / f"{shot}.png").stat().st_size > 1000


def test_finance_user_connects_xero_in_chromium(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connect → the provider's consent page on another site (localhost, while the console is
    on 127.0.0.1) → Allow → back to the console: the browser holds the SameSite=Strict cookie
    back on that navigation, and the console's own page carries on with it."""
    sync_api = pytest.importorskip("playwright.sync_api")
    running = start_oauth_sandbox(SharedClock())
    running.xero.settings.oauth.consent_page = True  # a click on the provider's site
    try:
        setup = oauth_console_setup(
            running, f"sqlite:///{tmp_path / 'hb.db'}", tmp_path, monkeypatch,
            authorize_host="localhost",
        )  # fmt: skip
        with serving(setup) as base, sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
            )
            page = browser.new_page(locale="en-NZ")
            page.set_default_timeout(60_000)
            expect = sync_api.expect
            visited: list[str] = []
            page.on("request", lambda r: visited.append(r.url.split("?")[0]))
            page.goto(base + "/connections")
            page.get_by_label("Name").fill("fiona")
            page.get_by_label("Password").fill(PASSWORD)
            page.keyboard.press("Enter")
            expect(page.get_by_role("heading", name="Connections")).to_be_visible()

            page.get_by_label("Connection").select_option(CONNECTION)
            page.get_by_role("button", name="Connect", exact=True).click()
            # the consent page, on the provider's site: the way back is a cross-site navigation
            expect(page.get_by_role("heading", name="Allow access?")).to_be_visible()
            assert page.url.startswith("http://localhost:")
            page.get_by_role("link", name="Allow access").click()
            tenant = running.xero.settings.tenant_id
            expect(
                page.get_by_role("status").filter(has_text=f"connected {CONNECTION}")
            ).to_contain_text(tenant)
            assert page.url == base + "/connections"
            # the cookie-less callback answered with the console's page, which resumed
            back = visited.index(base + "/connections/callback")
            assert visited[back : back + 3] == [
                base + "/connections/callback",
                base + "/connections/callback/resume",
                base + "/connections",
            ]
            expect(page.get_by_text("fiona (finance)")).to_be_visible()  # still signed in
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=ARTIFACTS / "9-connected.png", full_page=True)
            browser.close()
        with Session(setup.engine) as session:
            row = session.get(OAuthConnectionRow, CONNECTION)
        assert row is not None and row.tenant_id == tenant
    finally:
        running.stop()
