"""The YAML configuration, validated with pydantic.

Every error names the file, the key path and what is wrong, in one line. A config that fails
validation stops hourbridge before anything is pulled or pushed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from connectors.registry import Role, for_role
from core.errors import ConfigError
from core.periods import PeriodConfig
from core.secrets import SecretRefError, substitute
from mapping.rules import MappingRules

_NAME = r"^[a-z0-9][a-z0-9_-]{0,31}$"


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
    cron: str = Field(
        description="5-field crontab (minute hour day month weekday; weekday 0 or 7 = Sunday) "
        'in the organisation\'s timezone, for example "0 6 1 * *" (06:00 on the 1st)'
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
    def _valid_crontab(cls, value: str) -> str:
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
        default_factory=MappingRules, description="source ids → accounting entities and prices"
    )
    schedule: ScheduleConfig | None = Field(
        default=None,
        description="run this profile on a schedule under `hourbridge serve`: `cron` "
        "(5 fields, organisation's timezone), `period` (previous or current period), "
        "`misfire_grace_seconds` (default 3600)",
    )
    billing_period: PeriodConfig = Field(
        default_factory=PeriodConfig,
        description="billing periods (kind: monthly, weekly, semi-monthly or custom) and "
        "close_after_days (README: Periods and closing)",
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


class HourbridgeConfig(_Section):
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    organisation: OrganisationConfig
    sources: dict[Annotated[str, Field(pattern=_NAME)], Any] = Field(
        description="each validated by the model of the connector its type names"
    )
    targets: dict[Annotated[str, Field(pattern=_NAME)], Any]
    profiles: dict[Annotated[str, Field(pattern=_NAME)], ProfileConfig]

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

    @property
    def database_url(self) -> str:
        url = self.config.database.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith("sqlite:////"):
            rest = url[len(prefix) :]
            if rest and rest != ":memory:":
                return prefix + str((self.path.parent / rest).resolve())
        return url


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


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> LoadedConfig:
    """Read, substitute and validate a config file. Raises ConfigError with one line."""
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
    try:
        resolved: dict[str, Any] = substitute(raw, env, secrets)
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
