"""The YAML configuration, validated with pydantic.

Every error names the file, the key path and what is wrong, in one line. A config that fails
validation stops hourbridge before anything is pulled or pushed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from apscheduler.triggers.cron import CronTrigger
from babel import Locale, UnknownLocaleError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from connectors.registry import Role, for_role
from core.consoleconfig import ConsoleConfig
from core.errors import ConfigError
from core.opsconfig import AlertsConfig, ServeConfig
from core.periods import PeriodConfig
from core.secrets import Resolvers, SecretRefError, substitute
from mapping.rules import MappingRules

if TYPE_CHECKING:
    from core.vault import Vault

_NAME = r"^[a-z0-9][a-z0-9_-]{0,31}$"
_LOOPBACK = ("127.0.0.1", "localhost")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatabaseConfig(_Section):
    url: str = Field(
        default="sqlite:///hourbridge.db",
        description="SQLAlchemy URL; a relative SQLite path is relative to the config file",
    )

    @field_validator("url")
    @classmethod
    def _supported(cls, value: str) -> str:
        if not re.match(r"^(sqlite|postgresql(\+psycopg)?)://", value):
            raise ValueError("use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB")
        return value


class OrganisationConfig(_Section):
    timezone: str = Field(description="IANA name; billing periods are cut in this zone")
    locale: str = Field(
        default="en_NZ",
        description="how the web console writes numbers, dates and money (a CLDR locale "
        "such as en_NZ, en_GB, de_DE)",
    )

    @field_validator("locale")
    @classmethod
    def _known_locale(cls, value: str) -> str:
        try:
            Locale.parse(value)
        except (ValueError, UnknownLocaleError) as exc:
            raise ValueError(f"unknown locale {value!r} (write e.g. en_NZ)") from exc
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class ScheduleConfig(_Section):
    interval_seconds: int | None = Field(
        default=None,
        ge=1,
        description="instead of cron: run every this many seconds (near-continuous syncs)",
    )
    cron: str | None = Field(
        default=None,
        validate_default=True,
        description="5-field crontab (minute hour day month weekday; weekday 0 or 7 = Sunday) "
        'in the organisation\'s timezone, for example "0 6 1 * *" (06:00 on the 1st); '
        "required unless interval_seconds is set",
    )
    period: Literal["previous", "current"] = Field(
        default="previous",
        description="the billing period a scheduled run syncs, in the organisation's timezone: "
        "the period before the one the run falls in, or that one",
    )
    misfire_grace_seconds: int = Field(
        default=3600,
        ge=1,
        description="a run missed (process down or busy) by at most this many seconds still "
        "runs, once; later ones are skipped",
    )

    @field_validator("cron")
    @classmethod
    def _valid_crontab(cls, value: str | None, info: ValidationInfo) -> str | None:
        interval = info.data.get("interval_seconds")
        if value is None:
            if interval is None:
                raise ValueError("required (a crontab), unless interval_seconds is set")
            return None
        if interval is not None:
            raise ValueError("give cron or interval_seconds, not both")
        try:
            crontab_trigger(value, ZoneInfo("UTC"))
        except ValueError as exc:
            raise ValueError(f"invalid crontab {value!r}: {exc}") from None
        return value


_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _cron_weekdays(field: str) -> str:
    """A crontab day-of-week field (0 or 7 = Sunday) spelled with day names, which APScheduler 3
    reads as cron does; its numbers start at Monday (APScheduler issue 286)."""
    days: list[str] = []
    for part in field.split(","):
        base, slash, step_text = part.partition("/")
        if slash and not (step_text.isdigit() and int(step_text) > 0):
            raise ValueError(f"bad day-of-week step in {part!r}")
        step = int(step_text) if slash else 1
        if base == "*":
            if not slash:
                return "*"  # any day
            low, high = 0, 6
        elif re.fullmatch(r"\d+-\d+", base):
            low, high = (int(x) for x in base.split("-"))
        elif base.isdigit():
            low = int(base)
            high = 6 if slash else low
        else:
            days.append(part)  # names (mon-fri, sun) mean the same to APScheduler and to cron
            continue
        if not (0 <= low <= high <= 7):
            raise ValueError(f"bad day of week {part!r} (0-7, 0 or 7 = Sunday)")
        days.extend(_WEEKDAYS[d % 7] for d in range(low, high + 1, step))
    return ",".join(dict.fromkeys(days))


def crontab_trigger(expr: str, tz: ZoneInfo) -> CronTrigger:
    """An APScheduler trigger for a standard 5-field crontab, evaluated in ``tz``."""
    fields = expr.split()
    if len(fields) == 5:
        fields[4] = _cron_weekdays(fields[4])
    return CronTrigger.from_crontab(" ".join(fields), timezone=tz)


class ProfileConfig(_Section):
    source: str | None = Field(default=None, description="name of an entry under sources")
    sources: list[str] | None = Field(
        default=None, min_length=1, description="several sources billed together"
    )
    target: str = Field(description="name of an entry under targets")
    reference_prefix: str = Field(
        default="hb",
        pattern=r"^[A-Za-z0-9]{1,8}$",
        description="first part of our invoice key, sent as Reference (Xero) or in "
        "PrivateNote (QuickBooks): PREFIX/PROFILE/PERIOD/HASH (PERIOD: 2026-10, 2026-W43, "
        "2026-10-H1 or 2026-10-05, by billing_period.kind)",
    )
    due_days: int = Field(default=30, ge=0, le=365, description="due date = invoice date + this")
    mapping: MappingRules = Field(
        default_factory=MappingRules,
        description="source ids → accounting entities and prices; leave the key out to keep "
        "the mapping in the database instead (`hourbridge mappings import`)",
    )
    schedule: ScheduleConfig | None = Field(
        default=None,
        description="run this profile on a schedule under `hourbridge serve`: `cron` "
        "(5 fields, organisation's timezone), `period` (previous or current period), "
        "`misfire_grace_seconds` (default 3600)",
    )
    alerts: AlertsConfig | None = Field(
        default=None,
        description="tell a person when a run of this profile fails or needs attention: "
        "a Slack-compatible webhook and/or email",
    )
    drift: Literal["flag", "adjustment", "credit_note"] = Field(
        default="flag",
        description="an entry edited or deleted after its invoice left DRAFT: flag (record it "
        "for review, push nothing), adjustment (a line with the delta on the next invoice to "
        "that contact and currency) or credit_note (a reduction becomes a DRAFT credit note in "
        "Xero or a CreditMemo in QuickBooks; an increase becomes an adjustment line)",
    )
    billing_period: PeriodConfig = Field(
        default_factory=PeriodConfig,
        description="billing periods (kind: monthly, weekly, semi-monthly or custom) and "
        "close_after_days (README: Periods and closing)",
    )
    require_approval: bool = Field(
        default=False,
        description="scheduled runs only preview until a finance user approves exactly that "
        "batch in the web console (its Approve button pushes it)",
    )

    @model_validator(mode="after")
    def _one_way_to_name_sources(self) -> ProfileConfig:
        if (self.source is None) == (self.sources is None):
            raise ValueError("give either source (one name) or sources (a list of names)")
        if self.sources is not None and len(set(self.sources)) != len(self.sources):
            raise ValueError("sources lists a name twice")
        return self

    @property
    def source_names(self) -> list[str]:
        return [self.source] if self.source is not None else list(self.sources or [])


class ConnectionConfig(_Section):
    """An OAuth2 app registration; `hourbridge connect PROVIDER --name NAME` stores its tokens
    (encrypted) in the database, and targets refer to it with `connection: NAME`."""

    provider: Literal["xero", "quickbooks"] = Field(description="whose identity service")
    client_id: str = Field(min_length=1, description="the app's client id")
    client_secret: SecretStr = Field(description="the app's client secret, as ${ENV_VAR}")
    redirect_port: int = Field(
        default=8484,
        ge=0,
        le=65535,
        description="`hourbridge connect`'s callback listens on http://127.0.0.1:PORT/callback; "
        "register that redirect URI with the app (0: any free port, for tests); connecting "
        "from the console uses the console's own (console.public_url)",
    )
    scopes: list[str] | None = Field(
        default=None,
        description="requested scopes; default: Xero `openid profile email offline_access "
        "accounting.transactions accounting.contacts.read accounting.settings.read "
        "accounting.attachments`, "
        "QuickBooks `com.intuit.quickbooks.accounting`",
    )
    authorize_url: HttpUrl | None = Field(
        default=None, description="override of the provider's consent page URL"
    )
    token_url: HttpUrl | None = Field(default=None, description="override of the token URL")
    revoke_url: HttpUrl | None = Field(default=None, description="override of the revoke URL")
    connections_url: HttpUrl | None = Field(
        default=None, description="Xero only: override of https://api.xero.com/connections"
    )
    refresh_margin_seconds: int = Field(
        default=120, ge=0, le=1200, description="refresh this long before the token expires"
    )

    @field_validator("authorize_url", "token_url", "revoke_url", "connections_url")
    @classmethod
    def _https_or_loopback(cls, value: HttpUrl | None) -> HttpUrl | None:
        if value is not None and value.scheme != "https" and value.host not in _LOOPBACK:
            raise ValueError("use https (plain http only on 127.0.0.1 or localhost)")
        return value


class SecretsConfig(_Section):
    key_file: str | None = Field(
        default=None,
        description="file holding the Fernet key that encrypts stored tokens and secrets "
        "(mode 0600; relative to the config file); default: env HOURBRIDGE_SECRET_KEY",
    )


class HourbridgeConfig(_Section):
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    organisation: OrganisationConfig
    connections: dict[Annotated[str, Field(pattern=_NAME)], ConnectionConfig] = Field(
        default_factory=dict,
        description="OAuth2 apps whose tokens `hourbridge connect` stores, by name",
    )
    secrets: SecretsConfig = Field(
        default_factory=SecretsConfig, description="where the encryption key comes from"
    )
    sources: dict[Annotated[str, Field(pattern=_NAME)], Any] = Field(
        description="each validated by the model of the connector its type names"
    )
    targets: dict[Annotated[str, Field(pattern=_NAME)], Any]
    profiles: dict[Annotated[str, Field(pattern=_NAME)], ProfileConfig]
    serve: ServeConfig = Field(
        default_factory=ServeConfig, description="the /healthz and /metrics endpoint of serve"
    )
    console: ConsoleConfig | None = Field(
        default=None,
        description="the web console for finance staff (`hourbridge console`, or `serve` "
        "with console.with_serve)",
    )
    retention_days: int = Field(
        default=90,
        ge=1,
        description="run events (and alert records) older than this are pruned daily by serve "
        "and by `hourbridge runs prune`; runs, the ledger and invoices are kept",
    )

    @field_validator("sources", "targets", mode="before")
    @classmethod
    def _by_connector(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, dict):
            return value  # pydantic reports the wrong type
        role: Role = "source" if info.field_name == "sources" else "target"
        section = str(info.field_name)
        return {name: _connector_config(role, section, name, raw) for name, raw in value.items()}

    @model_validator(mode="after")
    def _references(self) -> HourbridgeConfig:
        for name, profile in self.profiles.items():
            key = "source" if profile.source is not None else "sources"
            for source in profile.source_names:
                if source not in self.sources:
                    raise _KeyedError(f"profiles.{name}.{key}", f"no source named {source!r}")
            if profile.target not in self.targets:
                raise _KeyedError(f"profiles.{name}.target", f"no target named {profile.target!r}")
            # an invoice key PREFIX/PROFILE/PERIOD/12-hex must fit in 64 characters
            longest = 7 if profile.billing_period.kind == "monthly" else 10
            if len(profile.reference_prefix) + len(name) + longest + 15 > 64:
                raise _KeyedError(
                    f"profiles.{name}",
                    f"reference_prefix and profile name are too long together for "
                    f"{profile.billing_period.kind} invoice keys (at most "
                    f"{49 - longest} characters)",
                )
        for name, target in self.targets.items():
            wanted = getattr(target, "connection", None)
            if wanted is None:
                continue
            if wanted not in self.connections:
                raise _KeyedError(
                    f"targets.{name}.connection", f"no connection named {wanted!r} in connections"
                )
            kind = getattr(target, "type", None)
            if self.connections[wanted].provider != kind:
                raise _KeyedError(
                    f"targets.{name}.connection",
                    f"connection {wanted!r} is for {self.connections[wanted].provider}, not {kind}",
                )
        return self

    def profile(self, name: str | None) -> tuple[str, ProfileConfig]:
        if name is None:
            if len(self.profiles) != 1:
                names = ", ".join(sorted(self.profiles))
                raise ConfigError(f"several profiles ({names}); choose one with --profile")
            name = next(iter(self.profiles))
        if name not in self.profiles:
            raise ConfigError(
                f"no profile named {name!r}; known: {', '.join(sorted(self.profiles))}"
            )
        return name, self.profiles[name]


class _KeyedError(ValueError):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")


@dataclass(frozen=True)
class LoadedConfig:
    path: Path
    config: HourbridgeConfig
    secrets: frozenset[str] = field(repr=False)

    def resolve_path(self, path: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else (self.path.parent / candidate).resolve()

    @property
    def database_url(self) -> str:
        return _database_url(self.path, self.config.database.url)


def _database_url(config_file: Path, url: str) -> str:
    """A relative SQLite path is relative to the config file."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith("sqlite:////"):
        rest = url[len(prefix) :]
        if rest and rest != ":memory:":
            return prefix + str((config_file.parent / rest).resolve())
    return url


def _stored_secrets(
    file: Path, raw: dict[str, Any], env: Mapping[str, str]
) -> Callable[[str], str | None]:
    """``${secret:NAME}`` lookups; the database and the key are opened on first use only."""
    opened: list[Vault] = []

    def lookup(name: str) -> str | None:
        if not opened:
            # only configs that use ${secret:} need the database and the key here
            from core.db import open_database  # noqa: PLC0415
            from core.vault import Vault, load_key  # noqa: PLC0415

            try:
                database = substitute(
                    raw.get("database") or {}, env, set(), "database", Resolvers(file.parent)
                )
                url = _database_url(file, DatabaseConfig.model_validate(database).url)
                key_file = (raw.get("secrets") or {}).get("key_file")
                where = Path(str(key_file)).expanduser() if key_file else None
                if where is not None and not where.is_absolute():
                    where = file.parent / where
                fernet = load_key(where, env)
            except (ConfigError, SecretRefError, ValidationError) as exc:
                raise LookupError(str(exc).splitlines()[0]) from None
            try:
                engine = open_database(url)
            except Exception as exc:  # the driver's own error types vary by back end
                raise LookupError(f"cannot open the database: {exc}") from None
            opened.append(Vault(engine, fernet))
        vault = opened[0]
        try:
            return vault.get_secret(name)
        except ConfigError as exc:
            raise LookupError(str(exc)) from None

    return lookup


def _connector_config(role: Role, section: str, name: str, raw: Any) -> BaseModel:
    """Validate one source/target with the model of the connector its ``type`` names."""
    if not isinstance(raw, dict):
        raise _KeyedError(f"{section}.{name}", "must be a mapping of keys")
    kind = raw.get("type")
    known = for_role(role)
    if kind not in known:
        choices = ", ".join(sorted(known)) or "none installed"
        raise _KeyedError(
            f"{section}.{name}.type", f"unknown {role} type {kind!r}; use one of: {choices}"
        )
    try:
        return known[str(kind)].config_model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = _loc((section, name, *first["loc"]))
        raise _KeyedError(where, _message(first, exc.error_count())) from None


def _message(first: Any, count: int) -> str:
    msg = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    return msg + (f" (and {count - 1} more)" if count > 1 else "")


def _loc(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        parts.append(f"[{item}]" if isinstance(item, int) else ("." if parts else "") + str(item))
    return "".join(parts)


def load_config(
    path: str | Path,
    environ: Mapping[str, str] | None = None,
    *,
    stored_secrets: bool = True,
) -> LoadedConfig:
    """Read, substitute and validate a config file. Raises ConfigError with one line.

    ``stored_secrets=False`` leaves ``${secret:NAME}`` unresolved (for the commands that
    manage the store itself, which must work before the secret is stored)."""
    file = Path(path)
    env = os.environ if environ is None else environ
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror or exc}") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "?"
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{file}: {where}: {problem}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: the top level must be a mapping of keys")
    secrets: set[str] = set()
    resolvers = Resolvers(
        file.parent, _stored_secrets(file, raw, env) if stored_secrets else None, keep_stored=True
    )
    try:
        resolved: dict[str, Any] = substitute(raw, env, secrets, "", resolvers)
    except SecretRefError as exc:
        raise ConfigError(f"{file}: {exc.path}: {exc}") from exc
    try:
        config = HourbridgeConfig.model_validate(resolved)
    except ValidationError as exc:
        first = exc.errors()[0]
        ctx_error = (first.get("ctx") or {}).get("error")
        if isinstance(ctx_error, _KeyedError):
            raise ConfigError(f"{file}: {ctx_error}") from None
        where = _loc(tuple(first["loc"]))
        raise ConfigError(f"{file}: {where}: {_message(first, exc.error_count())}") from None
    return LoadedConfig(path=file, config=config, secrets=frozenset(secrets))
