"""billing periods of any kind (labels up to 16 characters) and retainer balances

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WIDENED = ("invoices", "sync_runs")


def upgrade() -> None:
    # On SQLite, batch mode rebuilds the table (core.db.migrate turns foreign keys off
    # meanwhile, as the ledger refers to invoices).
    for table in _WIDENED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                "period",
                existing_type=sa.String(length=7),
                type_=sa.String(length=16),
                existing_nullable=False,
            )
    op.create_table(
        "retainer_balances",
        sa.Column("profile", sa.String(length=32), nullable=False),
        sa.Column("retainer", sa.String(length=140), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("invoice_key", sa.String(length=64), nullable=False),
        sa.Column("hours_included", sa.String(length=40), nullable=False),
        sa.Column("hours_in", sa.String(length=40), nullable=False),
        sa.Column("hours_used", sa.String(length=40), nullable=False),
        sa.Column("hours_overage", sa.String(length=40), nullable=False),
        sa.Column("hours_out", sa.String(length=40), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("profile", "retainer", "period", "seq"),
    )


def downgrade() -> None:
    op.drop_table("retainer_balances")
    for table in _WIDENED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                "period",
                existing_type=sa.String(length=16),
                type_=sa.String(length=7),
                existing_nullable=False,
            )
