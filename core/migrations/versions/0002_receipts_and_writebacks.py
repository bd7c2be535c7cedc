"""receipt links on entries, and the write-back queue

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("source_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("receipt_url", sa.Text(), nullable=True))
    op.create_table(
        "writebacks",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("source_id", sa.String(length=64), nullable=False),
        sa.Column("invoice_key", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "source_id"),
    )
    with op.batch_alter_table("writebacks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_writebacks_state"), ["state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("writebacks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_writebacks_state"))
    op.drop_table("writebacks")
    with op.batch_alter_table("source_entries", schema=None) as batch_op:
        batch_op.drop_column("receipt_url")
