"""The schema: migrations build exactly the models, and upgrade in place keeping data."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import Session, SQLModel

from core.db import create_db_engine, migrate, open_database
from core.tables import InvoiceRow


def test_migrations_match_the_models(db_url: str) -> None:
    engine = open_database(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []
    tables = set(inspect(engine).get_table_names())
    assert {"source_entries", "ledger", "invoices", "sync_runs", "sync_cursors"} <= tables


def test_reopening_upgrades_in_place_and_keeps_rows(db_url: str) -> None:
    engine = create_db_engine(db_url)
    migrate(engine, "0001")
    now = datetime(2026, 11, 1, tzinfo=UTC)
    with Session(engine) as session:
        session.add(
            InvoiceRow(
                key="k1",
                profile="p",
                target="xero",
                contact="contact_number=A",
                currency="NZD",
                period="2026-10",
                subtotal=Decimal("1234.5678"),
                created_at=now,
                updated_at=now,
            )
        )
        session.commit()
    engine.dispose()
    reopened = open_database(db_url)  # runs every pending migration
    with Session(reopened) as session:
        row = session.get(InvoiceRow, "k1")
        assert row is not None
        assert row.subtotal == Decimal("1234.5678")  # exact, on SQLite too
        assert row.created_at == now and row.created_at.tzinfo is not None
    assert date(2026, 10, 1) < date(2026, 11, 1)
