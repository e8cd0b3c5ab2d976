"""Migrations: a database at any earlier schema upgrades to the one head, and every feature's
migration undoes itself, on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from engine.schema import alembic_config


def test_the_migrations_have_one_head():
    assert ScriptDirectory.from_config(alembic_config()).get_heads() == ["0010"]


# SQLite's inspector cannot reflect expression indexes (lower(...)); the tables are what is compared.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_upgrade_down_to_the_first_release_and_up_again(database_url):
    engine = sa.create_engine(database_url)
    config = alembic_config()
    try:
        with engine.connect() as connection:
            config.attributes["connection"] = connection
            version = lambda: connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all()  # noqa: E731
            command.upgrade(config, "heads")
            full = set(sa.inspect(connection).get_table_names())
            assert version() == ["0010"]
            command.downgrade(config, "0002")
            assert version() == ["0002"]
            gone = full - set(sa.inspect(connection).get_table_names())
            assert {"case_agency", "applicant_link", "letter_document", "process_draft", "document",
                    "application_draft"} <= gone
            command.upgrade(config, "heads")
            assert version() == ["0010"] and set(sa.inspect(connection).get_table_names()) == full
            connection.commit()
    finally:
        engine.dispose()
