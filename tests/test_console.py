"""The web console through Starlette's TestClient against the sandbox (fake Harvest → fake
Xero): sign-in, CSRF, roles, every page, one mapping shared with the CLI, approval honoured by
the scheduler. The browser test is tests/test_console_browser.py."""

from __future__ import annotations

import re
import socket
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx2
import pytest
import yaml
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from console.cli import console_alongside
from console.services import preview
from core import approvals, mapping_store, users
from core import logging as hblog
from core.cli import app
from core.config import load_config
from core.consoleconfig import ConsoleConfig
from core.db import open_database
from core.errors import ConfigError
from core.periods import Period
from core.secrets import substitute
from core.tables import ApprovalRow, ConsoleAuditRow, SyncRunRow, UserRow
from sandbox.server import Sandbox
from scheduler.service import Service
from tests.conftest import ROOT, sandbox_config, write_config
from tests.console_helpers import (
    PASSWORD,
    PERIOD,
    PROFILE,
    SECRET_ENV,
    ConsoleSetup,
    cli,
    client_for,
    client_total,
    console_setup,
    csrf_of,
    oauth_console_setup,
    sign_in,
    unlabelled,
)
from tests.helpers import live_invoices, run_cli
from tests.oauth_helpers import (
    CONNECTION,
    SharedClock,
    connect_cli,
    start_oauth_sandbox,
)

PAGES = ["/", "/mappings", "/preview", "/runs", "/connections", "/runs/nope"]
POSTS = [
    "/logout",
    "/mappings/map",
    "/mappings/rates",
    "/mappings/rounding",
    "/preview/approve",
    "/runs/x/retry",
    "/connections/x/test",
    "/connections/x/remove",
    "/connections/connect",
    "/connections/choose",
]


@pytest.fixture
def setup(
    sandbox: Sandbox, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tokens: None
) -> ConsoleSetup:
    return console_setup(sandbox, db_url, tmp_path, monkeypatch)


def test_sign_in_csrf_and_roles(setup: ConsoleSetup, sandbox: Sandbox) -> None:
    client = client_for(setup)
    # no session: every page answers with the login page
    for path in PAGES:
        page = client.get(path)
        assert page.status_code == 200 and 'action="/login"' in page.text, path
        assert "Sign out" not in page.text
    assert client.get("/static/htmx.min.js").text.startswith("/*! htmx.org 2")
    # a form post without a session is refused, with or without a token
    assert client.post("/preview/approve", data={}, follow_redirects=False).status_code == 401
    # the login form itself needs its token
    assert (
        client.post("/login", data={"username": "fiona", "password": PASSWORD}).status_code == 403
    )
    login_token = csrf_of(client.get("/login").text)
    bad = client.post(
        "/login", data={"username": "fiona", "password": "wrong one!", "csrf_token": login_token}
    )
    assert bad.status_code == 401 and "Wrong name or password" in bad.text
    cookie = client.cookies.get("hourbridge_console")
    token = sign_in(client, "fiona")
    page = client.get("/")
    assert page.status_code == 200 and "Overview" in page.text
    assert client.cookies.get("hourbridge_console") != cookie  # a new session on sign-in
    # signed, expiring session cookie (console.session_minutes, default 480)
    fresh = client_for(setup)
    login_page = fresh.get("/login")
    signed = fresh.post(
        "/login",
        data={"username": "fiona", "password": PASSWORD, "csrf_token": csrf_of(login_page.text)},
        follow_redirects=False,
    )
    set_cookie = signed.headers["set-cookie"].lower()
    assert "max-age=28800" in set_cookie and "httponly" in set_cookie
    assert "samesite=strict" in set_cookie
    answer = client.get("/runs")
    assert answer.status_code == 200 and "fiona (finance)" in answer.text
    # every form post without the CSRF token is refused, and with a wrong one
    for path in POSTS:
        assert client.post(path, data={}).status_code == 403, path
        assert client.post(path, data={"csrf_token": token + "x"}).status_code == 403, path
    # a tampered cookie is no session
    other = client_for(setup)
    other.cookies.set("hourbridge_console", cookie or "x" + "A" * 40)
    assert 'action="/login"' in other.get("/").text
    # the viewer can look, but not approve (403) and nothing is pushed
    viewer = client_for(setup)
    viewer_token = sign_in(viewer, "victor")
    page = viewer.get(f"/preview?profile={PROFILE}&period={PERIOD}")
    assert page.status_code == 200 and "Approve and push" not in page.text
    fingerprint = re.search(r'name="fingerprint" value="(\w+)"', client.get(
        f"/preview?profile={PROFILE}&period={PERIOD}").text)  # fmt: skip
    assert fingerprint is not None
    refused = viewer.post(
        "/preview/approve",
        data={"csrf_token": viewer_token, "profile": PROFILE, "period": PERIOD,
              "fingerprint": fingerprint.group(1)},
    )  # fmt: skip
    assert refused.status_code == 403 and "viewer" in refused.text
    for path in ("/mappings/map", "/mappings/rates", "/mappings/rounding", "/runs/x/retry"):
        assert viewer.post(path, data={"csrf_token": viewer_token}).status_code == 403, path
    assert sandbox.xero.invoice_writes() == 0
    with Session(setup.engine) as session:
        assert session.exec(select(ApprovalRow)).all() == []
    # signing out ends the session
    assert client.post("/logout", data={"csrf_token": token}).status_code == 200
    assert 'action="/login"' in client.get("/").text


def test_pages_map_rate_preview_approve_runs(setup: ConsoleSetup, sandbox: Sandbox) -> None:
    month = sandbox.month
    client = client_for(setup)
    token = sign_in(client, "fiona")
    overview = client.get("/")
    assert PROFILE in overview.text and "Money waiting" in overview.text
    assert "ready" in overview.text or "nothing" in overview.text

    names = {c["id"]: c["name"] for c in month.clients}
    unmapped = month.unmapped_client_ids[0]
    page = client.get(f"/mappings?profile={PROFILE}&period={PERIOD}")
    assert page.status_code == 200 and unlabelled(page.text) == []
    assert unlabelled(client.get("/runs").text) == [] and unlabelled(overview.text) == []
    assert names[unmapped] in page.text and "no rule" in page.text
    # sorted by money at stake: the rows' at-stake order never increases
    contact = next(c for c in month.xero_contacts if c["Name"] == "WAITEMATĀ SAILING CLUB LIMITED")
    assert contact["ContactID"] in page.text  # the suggestion leads the choice

    # htmx search over the target's own contacts
    found = client.get(
        f"/mappings/candidates?profile={PROFILE}&period={PERIOD}&section=clients&q=waitemata"
    )
    assert contact["ContactID"] in found.text and found.text.count("<option") <= 20

    # a choice that is not in the target's list is refused
    bogus = client.post(
        "/mappings/map",
        data={"csrf_token": token, "profile": PROFILE, "period": PERIOD, "section": "clients",
              "key": str(unmapped), "target": "00000000-0000-0000-0000-000000000000"},
    )  # fmt: skip
    assert "not in the target" in bogus.text
    mapped = client.post(
        "/mappings/map",
        data={"csrf_token": token, "profile": PROFILE, "period": PERIOD, "section": "clients",
              "key": str(unmapped), "name": names[unmapped], "target": contact["ContactID"]},
    )  # fmt: skip
    assert "stored version 2" in mapped.text
    rate = client.post(
        "/mappings/rates",
        data={"csrf_token": token, "profile": PROFILE, "period": PERIOD, "level": "client",
              "entity": str(unmapped), "rate": "150", "from": "2026-10-01"},
    )  # fmt: skip
    assert "stored version 3" in rate.text and f"client {unmapped} from 2026-10-01" in rate.text
    overlap = client.post(
        "/mappings/rates",
        data={"csrf_token": token, "profile": PROFILE, "period": PERIOD, "level": "client",
              "entity": str(unmapped), "rate": "99", "until": "2026-12-31"},
    )  # fmt: skip
    assert "not saved" in overlap.text and "overlaps" in overlap.text
    bad_rounding = client.post(
        "/mappings/rounding",
        data={"csrf_token": token, "profile": PROFILE, "period": PERIOD, "level": "client",
              "entity": "5000001", "increment_minutes": "15", "mode": "sideways"},
    )  # fmt: skip
    assert "not saved" in bad_rounding.text and "rounding" in bad_rounding.text
    rounding = client.post(
        "/mappings/rounding",
        data={"csrf_token": token, "profile": PROFILE, "period": PERIOD, "level": "client",
              "entity": "5000001", "increment_minutes": "15", "mode": "nearest"},
    )  # fmt: skip
    assert "stored version 4" in rounding.text and "client 5000001: " in rounding.text
    with Session(setup.engine) as session:
        current = mapping_store.current(session, PROFILE)
        history = mapping_store.history(session, PROFILE)
    assert current is not None and current.version == 4 and current.author == "fiona"
    assert [h.author for h in history] == ["fiona", "fiona", "fiona", "setup"]

    preview = client.get(f"/preview?profile={PROFILE}&period={PERIOD}")
    expected = client_total(month, unmapped, Decimal(150))
    section = re.search(
        r'<section aria-label="Invoice for ' + re.escape(contact["Name"]) + r'".*?</section>',
        preview.text,
        re.S,
    )
    assert section is not None
    assert f"${expected:,.2f}" in section.group(0)
    assert f"client {unmapped} from 2026-10-01" in section.group(0)  # why the line got 150
    assert "new" in section.group(0)
    fingerprint = re.search(r'name="fingerprint" value="(\w+)"', preview.text)
    assert fingerprint is not None
    stale = client.post(
        "/preview/approve",
        data={"csrf_token": token, "profile": PROFILE, "period": PERIOD, "fingerprint": "0" * 64},
    )
    assert "changed since you looked" in stale.text and sandbox.xero.invoice_writes() == 0
    approved = client.post(
        "/preview/approve",
        data={"csrf_token": token, "profile": PROFILE, "period": PERIOD,
              "fingerprint": fingerprint.group(1)},
    )  # fmt: skip
    assert "approved and pushed" in approved.text and "succeeded" in approved.text
    wanted_id = contact["ContactID"].lower()
    pushed = [
        i
        for i in live_invoices(sandbox.xero.invoices)
        if str(i["Contact"]["ContactID"]).lower() == wanted_id
    ]
    assert len(pushed) == 1 and Decimal(str(pushed[0]["SubTotal"])) == expected
    with Session(setup.engine) as session:
        approval = session.exec(select(ApprovalRow)).one()
        audit = session.exec(select(ConsoleAuditRow)).all()
    assert approval.approved_by == "fiona" and approval.run_id is not None
    assert [a.action for a in audit] == ["approve"]

    runs = client.get(f"/runs?profile={PROFILE}&status=succeeded")
    assert approval.run_id[:12] in runs.text and "console" in runs.text
    assert "partial" not in client.get("/runs?status=partial").text.split("<tbody>")[1]
    detail = client.get(f"/runs/{approval.run_id}")
    # the other unmapped client still waits: grouped under its class, with the next step
    other = names[month.unmapped_client_ids[1]].replace("'", "&#39;")
    assert detail.status_code == 200 and other in detail.text
    assert "Next step:" in detail.text and "hourbridge" in detail.text.split("Next step:")[1]
    assert client.get("/runs/does-not-exist").status_code == 404
    # a succeeded run has nothing to retry
    again = client.post(f"/runs/{approval.run_id}/retry", data={"csrf_token": token})
    assert "nothing to retry" in again.text

    connections = client.get("/connections")
    assert "hourbridge connect xero" in connections.text
    # the preview now says unchanged, and offers no approval
    after = client.get(f"/preview?profile={PROFILE}&period={PERIOD}")
    assert "Approve and push" not in after.text and "unchanged" in after.text


def test_console_and_cli_share_one_mapping(
    setup: ConsoleSetup, sandbox: Sandbox, tmp_path: Path
) -> None:
    client = client_for(setup)
    token = sign_in(client, "fiona")
    unmapped = sandbox.month.unmapped_client_ids[1]
    contact = next(
        c for c in sandbox.month.xero_contacts if c["Name"] == "canterbury agritech, Ltd."
    )
    answer = client.post(
        "/mappings/map",
        data={"csrf_token": token, "profile": PROFILE, "period": PERIOD, "section": "clients",
              "key": str(unmapped), "target": contact["ContactID"]},
    )  # fmt: skip
    assert "stored version 2" in answer.text
    exported = cli(setup, "mappings", "export", "--config", setup.config)
    assert exported.code == 0
    assert f'"{unmapped}":' in exported.stdout or f"'{unmapped}':" in exported.stdout
    assert contact["ContactID"].lower() in exported.stdout
    history = cli(setup, "mappings", "history", "--config", setup.config)
    assert "fiona" in history.stdout

    # the reverse: a document imported with the CLI is what the console shows
    document = tmp_path / "edited.yaml"
    document.write_text(
        exported.stdout + "rates:\n- rate: '123.45'\n  client: '5000001'\n", encoding="utf-8"
    )
    imported = cli(
        setup, "mappings", "import", document, "--config", setup.config, "--author", "cli"
    )
    assert imported.code == 0, imported.stderr
    page = client.get(f"/mappings?profile={PROFILE}&period={PERIOD}")
    assert "version 3 by cli" in page.text
    assert re.search(r"client 5000001</td><td class=\"num\">123\.45", page.text)


def test_a_mapping_in_the_config_is_read_only(
    sandbox: Sandbox, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tokens: None
) -> None:
    monkeypatch.setenv(SECRET_ENV, "k" * 40)
    data = sandbox_config(sandbox, db_url)
    data["console"] = {"session_secret": "${" + SECRET_ENV + "}"}
    loaded = load_config(write_config(tmp_path / "c.yaml", data))
    setup = ConsoleSetup(tmp_path / "c.yaml", loaded, open_database(loaded.database_url))
    users.add(setup.engine, "fiona", users.Role.FINANCE, PASSWORD, now=datetime.now(UTC))
    client = client_for(setup)
    token = sign_in(client, "fiona")
    page = client.get(f"/mappings?profile={PROFILE}&period={PERIOD}")
    assert "lives in the config file" in page.text and 'action="/mappings/map"' not in page.text
    refused = client.post(
        "/mappings/rates",
        data={"csrf_token": token, "profile": PROFILE, "period": PERIOD, "level": "client",
              "entity": "5000001", "rate": "100"},
    )  # fmt: skip
    assert f"profiles.{PROFILE}.mapping" in refused.text


def test_scheduled_runs_wait_for_approval(
    sandbox: Sandbox, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tokens: None
) -> None:
    setup = console_setup(
        sandbox, db_url, tmp_path, monkeypatch,
        require_approval=True, schedule={"cron": "0 6 1 * *", "period": "previous"},
    )  # fmt: skip
    now = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
    service = Service(setup.loaded, setup.engine, clock=lambda: now, echo=lambda _l: None)
    service._run_scheduled(PROFILE)
    assert sandbox.xero.invoice_writes() == 0  # previewed only
    with Session(setup.engine) as session:
        first = session.exec(select(SyncRunRow)).all()
    assert [(r.dry_run, r.trigger) for r in first] == [(True, "schedule")]
    # someone approves exactly that batch (what the console's Approve records)
    seen = preview(setup.loaded, setup.engine, PROFILE, Period.parse(PERIOD))
    approvals.record(setup.engine, profile=PROFILE, period=PERIOD,
                     fingerprint=seen.fingerprint, user="fiona", now=now)  # fmt: skip
    service._run_scheduled(PROFILE)
    assert sandbox.xero.invoice_writes() > 0
    with Session(setup.engine) as session:
        pushed = session.exec(select(SyncRunRow).where(col(SyncRunRow.dry_run).is_(False))).all()
    assert [r.trigger for r in pushed] == ["schedule"]


def test_users_add_hashes_and_refuses_bad_input(
    db_url: str, tmp_path: Path, sandbox: Sandbox, tokens: None
) -> None:
    config = write_config(tmp_path / "c.yaml", sandbox_config(sandbox, db_url))

    def add(*args: str, stdin: str) -> tuple[int, str]:
        result = CliRunner().invoke(
            app, ["users", "add", *args, "--config", str(config)], input=stdin
        )
        return result.exit_code, result.stdout + result.stderr

    code, text = add("ana", "--role", "finance", "--password-stdin", stdin="long enough pw\n")
    assert code == 0 and "added user ana (finance)" in text, text
    code, text = add("ana", "--role", "viewer", stdin="long enough 2\nlong enough 2\n")
    assert code == 0 and "updated user ana (viewer)" in text
    assert add("bo", "--password-stdin", stdin="short\n")[0] == 2
    assert add("bad name", "--password-stdin", stdin="long enough pw\n")[0] == 2
    assert add("cy", "--role", "admin", "--password-stdin", stdin="long enough pw\n")[0] == 2
    engine = open_database(load_config(config).database_url)
    with Session(engine) as session:
        row = session.get(UserRow, "ana")
    assert row is not None and row.role == "viewer"
    assert "long enough" not in row.password_hash and row.password_hash.startswith("$argon2id$")
    assert users.authenticate(engine, "ana", "long enough 2") == users.User(
        "ana", users.Role.VIEWER
    )
    assert users.authenticate(engine, "ana", "long enough pw") is None
    assert users.authenticate(engine, "nobody", "long enough 2") is None
    listed = run_cli("users", "list", "--config", config)
    assert listed.stdout.split() == ["ana", "viewer"]
    assert run_cli("users", "remove", "ana", "--config", config).code == 0
    assert users.listed(engine) == []


def test_console_binds_loopback_unless_behind_tls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox, tokens: None
) -> None:
    monkeypatch.setenv(SECRET_ENV, "z" * 40)
    data = sandbox_config(sandbox, f"sqlite:///{tmp_path / 'db.sqlite'}")
    data["console"] = {"session_secret": "${" + SECRET_ENV + "}", "host": "0.0.0.0"}
    with pytest.raises(ConfigError, match="behind_tls"):
        load_config(write_config(tmp_path / "remote.yaml", data))
    data["console"] = {"session_secret": "literal-secret-" + "x" * 30}
    with pytest.raises(ConfigError, match="session_secret"):
        load_config(write_config(tmp_path / "literal.yaml", data))
    data["console"] = {"session_secret": "${" + SECRET_ENV + "}"}
    config = write_config(tmp_path / "local.yaml", data)
    refused = run_cli("console", "--config", config, "--host", "0.0.0.0")
    assert refused.code == 2 and "behind_tls" in refused.stderr
    data["console"]["behind_tls"] = True
    data["console"]["host"] = "0.0.0.0"
    loaded = load_config(write_config(tmp_path / "tls.yaml", data))
    assert loaded.config.console is not None and loaded.config.console.host == "0.0.0.0"
    data.pop("console")
    missing = run_cli("console", "--config", write_config(tmp_path / "none.yaml", data))
    assert missing.code == 2 and "console: missing" in missing.stderr


def test_the_commented_console_example_is_valid() -> None:
    """config.example.yaml documents the console section in comments: it must validate."""
    lines = (ROOT / "config.example.yaml").read_text(encoding="utf-8").splitlines()
    start = lines.index("# console:")
    block = []
    for line in lines[start + 1 :]:
        if not line.startswith("#   "):
            break
        block.append(line[4:])
    raw = substitute(yaml.safe_load("\n".join(block)), {SECRET_ENV: "e" * 40}, set())
    parsed = ConsoleConfig.model_validate(raw)
    assert (parsed.host, parsed.port, parsed.behind_tls) == ("127.0.0.1", 8080, False)


def test_connections_list_test_and_remove(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str
) -> None:
    clock = SharedClock()
    oauth_sandbox = start_oauth_sandbox(clock)
    try:
        setup = oauth_console_setup(oauth_sandbox, db_url, tmp_path, monkeypatch)
        result, _browser = connect_cli(monkeypatch, setup.config)
        assert result.code == 0, result.stderr
        hblog.configure(setup.loaded.secrets)  # the CLI logged to its own (now closed) stderr
        tenant = oauth_sandbox.xero.settings.tenant_id

        viewer = client_for(setup)
        viewer_token = sign_in(viewer, "victor")
        page = viewer.get("/connections")
        assert CONNECTION in page.text and tenant in page.text and ">ok<" in page.text
        assert f"Remove {CONNECTION}" not in page.text  # a viewer may test, not remove
        overview = viewer.get("/").text
        assert "harvest: expiry unknown" in overview  # a token from the environment
        assert "xero: " in overview and "xero: expiry unknown" not in overview  # stored
        tested = viewer.post(f"/connections/{CONNECTION}/test", data={"csrf_token": viewer_token})
        assert f"{CONNECTION}: ok" in tested.text
        refused = viewer.post(
            f"/connections/{CONNECTION}/remove", data={"csrf_token": viewer_token}
        )
        assert refused.status_code == 403 and oauth_sandbox.xero.auth.live_grants() == 1

        client = client_for(setup)
        token = sign_in(client, "fiona")
        removed = client.post(f"/connections/{CONNECTION}/remove", data={"csrf_token": token})
        assert "revoked at the provider" in removed.text
        assert oauth_sandbox.xero.auth.live_grants() == 0
        assert "not connected" in client.get("/connections").text
        overview = client.get("/").text
        assert f"{CONNECTION} (xero):" in overview and "not connected yet" in overview
        missing = client.post(f"/connections/{CONNECTION}/test", data={"csrf_token": token})
        assert "error" in missing.text and CONNECTION in missing.text
        with Session(setup.engine) as session:
            audit = session.exec(select(ConsoleAuditRow)).all()
        assert [(a.user, a.action, a.subject) for a in audit] == [
            ("fiona", "connection.remove", CONNECTION)
        ]
    finally:
        oauth_sandbox.stop()


def test_a_partial_run_shows_its_failures_and_retries_from_the_console(
    setup: ConsoleSetup, sandbox: Sandbox, tmp_path: Path
) -> None:
    exported = cli(setup, "mappings", "export", "--config", setup.config)
    broken = tmp_path / "broken.yaml"
    acme = "5000001"
    broken.write_text(
        exported.stdout.replace("tax_type: ZERORATEDOUTPUT", "tax_type: NOSUCHTAX", 1),
        encoding="utf-8",
    )
    assert cli(setup, "mappings", "import", broken, "--config", setup.config).code == 0
    first = cli(setup, "sync", "--config", setup.config, "--period", PERIOD, "--json").json()
    assert first["status"] == "partial" and first["invoices_failed"] == 1
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text(exported.stdout, encoding="utf-8")
    assert cli(setup, "mappings", "import", fixed, "--config", setup.config).code == 0
    assert acme in exported.stdout

    client = client_for(setup)
    token = sign_in(client, "fiona")
    listed = client.get("/runs?status=partial")
    assert first["run_id"][:12] in listed.text
    detail = client.get(f"/runs/{first['run_id']}")
    assert "target_rejected" in detail.text and "Next step:" in detail.text
    assert "Retry the failed invoices" in detail.text
    drafts = len(live_invoices(sandbox.xero.invoices))
    retried = client.post(f"/runs/{first['run_id']}/retry", data={"csrf_token": token})
    assert "retried as run" in retried.text and "succeeded" in retried.text
    assert f'retry of <a href="/runs/{first["run_id"]}">' in retried.text
    assert len(live_invoices(sandbox.xero.invoices)) == drafts + 1


def test_serve_can_serve_the_console_too(
    setup: ConsoleSetup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    data = yaml.safe_load(setup.config.read_text(encoding="utf-8"))
    data["console"].update(port=port, with_serve=True)
    loaded = load_config(write_config(tmp_path / "with-serve.yaml", data))
    instance = console_alongside(loaded)
    assert instance is not None
    try:
        for _ in range(200):
            if instance.started:
                break
            time.sleep(0.05)
        answer = httpx2.get(f"http://127.0.0.1:{port}/", follow_redirects=True)
        assert answer.status_code == 200 and 'action="/login"' in answer.text
    finally:
        instance.should_exit = True
    data["console"]["with_serve"] = False
    assert console_alongside(load_config(write_config(tmp_path / "off.yaml", data))) is None
