"""The configuration reference, generated from the pydantic models themselves.

`hourbridge config reference` prints it; docs/config-reference.md is its output, and a test
keeps the two identical, so the reference can't drift from the code.
"""

from __future__ import annotations

from typing import Any, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from connectors.registry import installed
from core.config import (
    ConnectionConfig,
    DatabaseConfig,
    OrganisationConfig,
    ProfileConfig,
    ScheduleConfig,
    SecretsConfig,
)
from core.consoleconfig import ConsoleConfig
from core.periods import DateRange, PeriodConfig
from mapping.billing import FixedFee, Milestone, Retainer
from mapping.rules import ClientRule, MappingRules, ProjectRule, RateRule, Rounding, TaskRule


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is None:
        name = getattr(annotation, "__name__", str(annotation))
        return {"NoneType": "null", "SecretStr": "secret (${ENV_VAR} only)"}.get(name, name)
    args = [a for a in get_args(annotation)]
    if str(origin) == "typing.Literal":
        return " | ".join(repr(a) for a in args)
    inner = ", ".join(_type_name(a) for a in args)
    origin_name = getattr(origin, "__name__", str(origin)).replace("UnionType", "")
    if origin_name in ("", "Union"):
        return " | ".join(_type_name(a) for a in args)
    return f"{origin_name}[{inner}]"


def _default(field: FieldInfo) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "**required**"
    if field.default_factory is not None:
        return "(empty)"
    return f"`{field.default}`" if field.default is not None else "none"


def _table(model: type[BaseModel]) -> list[str]:
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    # `type` first: it selects the connector (fields a shared base declares come before it)
    fields = sorted(model.model_fields.items(), key=lambda item: item[0] != "type")
    for name, field in fields:
        meaning = (field.description or "").replace("|", "\\|")
        if name == "type" and not meaning:
            meaning = "selects this connector"
        kind = _type_name(field.annotation).replace("|", "\\|")
        key = field.alias or name  # `from` is spelled from_ in Python
        rows.append(f"| `{key}` | {kind} | {_default(field)} | {meaning} |")
    return rows


def render() -> str:
    out = [
        "# Configuration reference",
        "",
        "Generated from the code by `hourbridge config reference`; do not edit by hand.",
        "See `config.example.yaml` for a working, commented example.",
        "",
        "Top level: `database`, `organisation`, `connections`, `secrets`, `sources`, `targets`,",
        "`profiles`. Unknown keys are errors. Secrets are accepted only as references:",
        "`${ENV_VAR}`, `${file:/path}` or `${secret:NAME}` (`hourbridge secrets set NAME`).",
        "",
        "## database",
        *_table(DatabaseConfig),
        "",
        "## organisation",
        *_table(OrganisationConfig),
        "",
        "## connections.NAME",
        "",
        "An OAuth2 app; `hourbridge connect PROVIDER --name NAME` stores its tokens, encrypted.",
        "",
        *_table(ConnectionConfig),
        "",
        "## secrets",
        *_table(SecretsConfig),
        "",
        "## console",
        "",
        "The web console (`hourbridge console`); sign-in users come from `hourbridge users add`.",
        "",
        *_table(ConsoleConfig),
        "",
        "## profiles.NAME",
        *_table(ProfileConfig),
        "",
        "### profiles.NAME.schedule",
        *_table(ScheduleConfig),
        "",
        "### profiles.NAME.billing_period",
        *_table(PeriodConfig),
        "",
        "### profiles.NAME.billing_period.ranges[]",
        *_table(DateRange),
        "",
        "### profiles.NAME.mapping",
        *_table(MappingRules),
        "",
        "### mapping.rates[]",
        *_table(RateRule),
        "",
        "### mapping.rounding, mapping.clients.ID.rounding, mapping.projects.ID.rounding",
        *_table(Rounding),
        "",
        "### mapping.clients.ID",
        *_table(ClientRule),
        "",
        "### mapping.projects.ID",
        *_table(ProjectRule),
        "",
        "### mapping.tasks.ID, mapping.expense_categories.ID, default_task, default_expense",
        *_table(TaskRule),
        "",
        "### mapping.retainers[]",
        *_table(Retainer),
        "",
        "### mapping.fixed_fees[]",
        *_table(FixedFee),
        "",
        "### mapping.fixed_fees[].milestones[]",
        *_table(Milestone),
    ]
    for role, title in (("source", "sources.NAME"), ("target", "targets.NAME")):
        for kind, spec in sorted(installed().items()):
            if spec.role != role:
                continue
            out += ["", f"## {title} with `type: {kind}`", "", spec.description, ""]
            out += _table(spec.config_model)
    return "\n".join(out) + "\n"
