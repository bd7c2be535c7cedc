"""drifts: entries edited or deleted after their invoice left DRAFT, each handled once

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "drifts",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("source_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("profile", sa.String(length=32), nullable=False),
        sa.Column("invoice_key", sa.String(length=64), nullable=False),
        sa.Column("invoice_number", sa.String(length=64), nullable=True),
        sa.Column("contact", sa.String(length=300), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("change", sa.String(length=16), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.Column("hours_before", sa.String(length=40), nullable=False),
        sa.Column("price_before", sa.String(length=40), nullable=False),
        sa.Column("hours_after", sa.String(length=40), nullable=False),
        sa.Column("price_after", sa.String(length=40), nullable=False),
        sa.Column("delta_hours", sa.String(length=40), nullable=False),
        sa.Column("delta_amount", sa.String(length=40), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("settled_by", sa.String(length=64), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "source_id", "seq"),
    )
    op.create_index(op.f("ix_drifts_profile"), "drifts", ["profile"], unique=False)
    op.create_index(op.f("ix_drifts_state"), "drifts", ["state"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_drifts_state"), table_name="drifts")
    op.drop_index(op.f("ix_drifts_profile"), table_name="drifts")
    op.drop_table("drifts")
