"""Other secrets: ${file:...}, ${secret:NAME} from the encrypted store, literal ones refused,
and `hourbridge config show` masking every secret."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from core.cli import app
from core.config import ConnectionConfig, SecretsConfig, load_config
from core.errors import ConfigError
from core.secrets import substitute
from tests.conftest import ROOT, example_config, write_config
from tests.helpers import run_cli

HARVEST_VALUE = "hv-7f3a9c0d1e2b4a68"


def _config(tmp_path: Path, token_ref: str) -> Path:
    data: dict[str, Any] = example_config()
    data["database"]["url"] = f"sqlite:///{tmp_path / 'hb.db'}"
    data["sources"]["harvest"]["access_token"] = token_ref
    return write_config(tmp_path / "c.yaml", data)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> str:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("HOURBRIDGE_SECRET_KEY", key)
    monkeypatch.setenv("XERO_ACCESS_TOKEN", "xero-bearer-5d1c")
    monkeypatch.delenv("HOURBRIDGE_SECRET_KEY_FILE", raising=False)
    return key


def test_file_references_read_the_file_relative_to_the_config(env: str, tmp_path: Path) -> None:
    (tmp_path / "harvest.token").write_text(HARVEST_VALUE + "\n", encoding="utf-8")
    loaded = load_config(_config(tmp_path, "${file:harvest.token}"))
    assert loaded.config.sources["harvest"].access_token.get_secret_value() == HARVEST_VALUE
    assert HARVEST_VALUE in loaded.secrets  # scrubbed from logs like any secret
    with pytest.raises(ConfigError, match=r"sources\.harvest\.access_token: cannot read"):
        load_config(_config(tmp_path, "${file:/nonexistent/x}"))


def test_literal_secrets_are_still_refused(env: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="literal secrets are refused"):
        load_config(_config(tmp_path, HARVEST_VALUE))


def test_secrets_set_stores_encrypted_and_the_config_resolves_it(
    env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path, "${secret:harvest-token}")
    with pytest.raises(ConfigError, match="no stored secret 'harvest-token'"):
        load_config(config)
    stored = CliRunner().invoke(
        app,
        ["secrets", "set", "harvest-token", "--config", str(config)],
        input=HARVEST_VALUE + "\n",
    )
    assert stored.exit_code == 0, stored.stderr
    assert HARVEST_VALUE not in stored.stdout
    loaded = load_config(config)
    assert loaded.config.sources["harvest"].access_token.get_secret_value() == HARVEST_VALUE
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("hb.db*"))
    assert b"stored_secrets" in raw and HARVEST_VALUE.encode() not in raw
    listed = run_cli("secrets", "list", "--config", config)
    assert listed.stdout.split() == ["harvest-token"]

    monkeypatch.delenv("HOURBRIDGE_SECRET_KEY")
    with pytest.raises(ConfigError, match="no encryption key"):
        load_config(config)
    monkeypatch.setenv("HOURBRIDGE_SECRET_KEY", Fernet.generate_key().decode())
    with pytest.raises(ConfigError, match="not the one it was stored with"):
        load_config(config)


def test_the_value_never_comes_from_the_command_line(env: str, tmp_path: Path) -> None:
    config = _config(tmp_path, "${HARVEST_ACCESS_TOKEN}")
    result = CliRunner().invoke(
        app, ["secrets", "set", "x", HARVEST_VALUE, "--config", str(config)], input=""
    )
    assert result.exit_code == 2  # no such argument: values are read from stdin or a prompt


def test_config_show_masks_every_secret(
    env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARVEST_ACCESS_TOKEN", HARVEST_VALUE)
    data = example_config()
    data["database"]["url"] = "postgresql+psycopg://hb:${DB_PASSWORD}@db.example/hb"
    monkeypatch.setenv("DB_PASSWORD", "pg-pass-93ab")
    config = write_config(tmp_path / "c.yaml", data)
    shown = run_cli("config", "show", "--config", config)
    assert shown.code == 0, shown.stderr
    for secret in (HARVEST_VALUE, "xero-bearer-5d1c", "pg-pass-93ab"):
        assert secret not in shown.stdout
    assert "access_token: '**********'" in shown.stdout
    assert "db.example" in shown.stdout and "timezone:" in shown.stdout


def test_the_commented_connections_example_is_valid() -> None:
    text = (ROOT / "config.example.yaml").read_text(encoding="utf-8")
    lines = text.splitlines()
    start = lines.index("# connections:")
    block = []
    for line in lines[start:]:
        if not line.startswith("#"):
            break
        block.append(line[2:])
    raw = yaml.safe_load("\n".join(block))
    raw = substitute(raw, {"XERO_CLIENT_SECRET": "s", "QBO_CLIENT_SECRET": "q"}, set())
    assert {c["provider"] for c in raw["connections"].values()} == {"xero", "quickbooks"}
    for entry in raw["connections"].values():
        ConnectionConfig.model_validate(entry)
    SecretsConfig.model_validate(raw["secrets"])


def test_keygen_writes_a_private_key_file_the_config_can_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOURBRIDGE_SECRET_KEY", raising=False)
    monkeypatch.delenv("HOURBRIDGE_SECRET_KEY_FILE", raising=False)
    monkeypatch.setenv("HARVEST_ACCESS_TOKEN", HARVEST_VALUE)
    monkeypatch.setenv("XERO_ACCESS_TOKEN", "xero-bearer-5d1c")
    key = tmp_path / "keys" / "hb.key"
    key.parent.mkdir()
    made = run_cli("secrets", "keygen", "--file", key)
    assert made.code == 0, made.stderr
    assert key.stat().st_mode & 0o777 == 0o600
    assert run_cli("secrets", "keygen", "--file", key).code == 2  # never overwritten
    data = example_config()
    data["database"]["url"] = f"sqlite:///{tmp_path / 'hb.db'}"
    data["secrets"] = {"key_file": "keys/hb.key"}  # relative to the config file
    config = write_config(tmp_path / "c.yaml", data)
    stored = CliRunner().invoke(
        app, ["secrets", "set", "x", "--config", str(config)], input="v4lue-123\n"
    )
    assert stored.exit_code == 0, stored.stderr
    key.chmod(0o640)
    refused = run_cli("secrets", "list", "--config", config)
    assert refused.code == 2 and "chmod 600" in refused.stderr
