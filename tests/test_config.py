"""Config: every error is one line naming the file and key; secrets only by reference."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.registry import installed
from core.config import load_config
from core.config_reference import render
from core.errors import ConfigError
from core.secrets import substitute
from tests.conftest import ROOT, example_config, write_config
from tests.helpers import run_cli

ENV = {"HARVEST_ACCESS_TOKEN": "h-secret-1", "XERO_ACCESS_TOKEN": "x-secret-2"}


def _error(tmp_path: Path, data: dict[str, Any], env: dict[str, str] | None = None) -> str:
    path = write_config(tmp_path / "bad.yaml", data)
    with pytest.raises(ConfigError) as info:
        load_config(path, ENV if env is None else env)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path) + ": ")
    return message


def test_the_example_config_is_valid_and_documents_a_working_profile() -> None:
    loaded = load_config(ROOT / "config.example.yaml", ENV)
    profile = loaded.config.profiles["agency-monthly"]
    assert profile.source == "harvest"
    assert loaded.config.sources["harvest"].access_token.get_secret_value() == "h-secret-1"
    assert loaded.secrets == {"h-secret-1", "x-secret-2"}
    assert "h-secret-1" not in repr(loaded.config)


def test_missing_env_var_names_the_key(tmp_path: Path) -> None:
    message = _error(tmp_path, example_config(), env={"HARVEST_ACCESS_TOKEN": "a"})
    assert "targets.xero.access_token" in message
    assert "XERO_ACCESS_TOKEN is not set" in message


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    data = example_config()
    data["sources"]["harvest"]["per_pgae"] = 100
    message = _error(tmp_path, data)
    assert "sources.harvest.per_pgae: unknown key" in message


def test_wrong_type_names_the_key(tmp_path: Path) -> None:
    data = example_config()
    data["sources"]["harvest"]["per_page"] = "lots"
    assert "sources.harvest.per_page" in _error(tmp_path, data)
    data = example_config()
    data["sources"]["harvest"]["per_page"] = 5000
    assert "sources.harvest.per_page: Input should be less than or equal to 2000" in _error(
        tmp_path, data
    )


def test_literal_secret_is_refused(tmp_path: Path) -> None:
    data = example_config()
    data["targets"]["xero"]["access_token"] = "eyJhbGciOi.literal"
    message = _error(tmp_path, data)
    assert "targets.xero.access_token: literal secrets are refused" in message
    assert "eyJhbGciOi" not in message


def test_literal_database_password_is_refused(tmp_path: Path) -> None:
    data = example_config()
    data["database"]["url"] = "postgresql+psycopg://app:hunter2@db/hb"
    message = _error(tmp_path, data)
    assert "database.url" in message
    assert "hunter2" not in message


def test_profile_must_name_a_known_source(tmp_path: Path) -> None:
    data = example_config()
    data["profiles"]["agency-monthly"]["source"] = "toggl"
    assert "profiles.agency-monthly.source: no source named 'toggl'" in _error(tmp_path, data)


def test_client_rule_needs_exactly_one_contact(tmp_path: Path) -> None:
    data = example_config()
    data["profiles"]["agency-monthly"]["mapping"]["clients"]["5000001"] = {
        "contact_number": "A",
        "contact_name": "B",
    }
    message = _error(tmp_path, data)
    assert "profiles.agency-monthly.mapping.clients.5000001" in message
    assert "exactly one of contact_id" in message


@pytest.mark.parametrize(
    ("kind", "account", "value"),
    [
        ("xero", "tenant_id", "3f1c2a9e-8d4b-4c6a-9e2f-1a2b3c4d5e6f"),
        ("quickbooks", "realm_id", "4620816365"),
    ],
)
def test_a_target_takes_a_token_or_a_connection_and_a_token_names_its_organisation(
    tmp_path: Path, kind: str, account: str, value: str
) -> None:
    data = example_config()
    target = {"type": kind, "access_token": "${XERO_ACCESS_TOKEN}", account: value}
    data["targets"]["xero"] = target
    load_config(write_config(tmp_path / "good.yaml", data), ENV)  # as given, it is valid
    target["connection"] = "acme"
    both = _error(tmp_path, data)
    del target["connection"], target["access_token"]
    neither = _error(tmp_path, data)
    for message in (both, neither):
        assert "targets.xero" in message
        assert "give either access_token or connection (exactly one)" in message
    target["access_token"] = "${XERO_ACCESS_TOKEN}"
    del target[account]
    assert f"{account} is required with access_token" in _error(tmp_path, data)


def test_bad_timezone_and_yaml(tmp_path: Path) -> None:
    data = example_config()
    data["organisation"]["timezone"] = "Mars/Olympus"
    assert "organisation.timezone: unknown timezone" in _error(tmp_path, data)
    path = tmp_path / "broken.yaml"
    path.write_text("sources: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken.yaml: line \d+"):
        load_config(path, ENV)


def test_relative_sqlite_path_is_relative_to_the_config_file(tmp_path: Path) -> None:
    data = example_config()
    data["database"]["url"] = "sqlite:///state/hb.db"
    loaded = load_config(write_config(tmp_path / "c.yaml", data), ENV)
    assert loaded.database_url == f"sqlite:///{tmp_path / 'state' / 'hb.db'}"


def test_the_config_reference_in_docs_is_generated_from_the_code() -> None:
    on_disk = (ROOT / "docs" / "config-reference.md").read_text(encoding="utf-8")
    assert on_disk == render(), "run: hourbridge config reference > docs/config-reference.md"
    for key in ("access_token", "per_page", "tenant_id", "realm_id", "due_days", "expenses"):
        assert f"`{key}`" in on_disk


def test_config_check_validates_without_calling_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path / "c.yaml", example_config())
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    ok = run_cli("config", "check", "--config", config)
    assert ok.code == 0 and "valid" in ok.stdout
    for name in ENV:
        monkeypatch.delenv(name)
    bad = run_cli("config", "check", "--config", config)
    assert bad.code == 2 and "HARVEST_ACCESS_TOKEN is not set" in bad.stderr


def test_the_commented_connector_examples_in_the_example_config_are_valid() -> None:
    """The commented-out sources and targets are documentation: they must validate too."""
    text = (ROOT / "config.example.yaml").read_text(encoding="utf-8")
    blocks: dict[str, list[str]] = {}
    current: str | None = None
    for line in text.splitlines():
        head = re.match(r"^  # ([a-z_]+):$", line)
        if head:
            current = head.group(1)
            blocks[current] = []
        elif current and line.startswith("  #   "):
            blocks[current].append(line[len("  #   ") :])
        else:
            current = None
    assert {"toggl", "clockify", "exports", "qbo", "files"} <= set(blocks)
    env = {"TOGGL_API_TOKEN": "t", "CLOCKIFY_API_KEY": "k", "QUICKBOOKS_ACCESS_TOKEN": "q"}
    for lines in blocks.values():
        raw = substitute(yaml.safe_load("\n".join(lines)), env, set())
        spec = installed()[raw["type"]]
        spec.config_model.model_validate(raw)  # raises on any stale key
