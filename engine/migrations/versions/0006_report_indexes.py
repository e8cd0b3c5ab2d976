"""indexes for the reports: completed tasks by name, audit events by kind and time, decisions by
date, letters by case and template

Measured with bench/reports.py on 100,000 cases (3.8 million audit rows; docs/performance.md,
"Reports"): the statutory figures take 3.0 s without these indexes and 0.23 s with them, the
dashboard 3.4 s and 0.44 s. Each one earns its place (the dashboard without it, all others in
place): `ix_audit_event_completed_task` 1.5 s (and the statutory figures 2.5 s),
`ix_audit_event_event_at` 0.96 s, `ix_outbox_case_template` 0.71 s, `ix_case_review_decided_on`
0.64 s.

Revision ID: 0006
Revises: 0002
"""
from alembic import op

revision = "0006"
down_revision = "0002"
branch_labels = None
depends_on = None


def index_statements(dialect: str) -> dict[str, str]:
    """CREATE INDEX statements by name (bench/reports.py uses them too). The task expression must
    be written exactly as the reports' queries write it (engine/reports/sql.py), or the database
    will not match them to the index."""
    task = "(detail ->> 'task')" if dialect == "postgresql" else "json_extract(detail, '$.task')"
    return {
        "ix_audit_event_completed_task":
            f"CREATE INDEX ix_audit_event_completed_task ON audit_event ({task}, case_id, at) "
            "WHERE event = 'task_completed'",
        "ix_audit_event_event_at": "CREATE INDEX ix_audit_event_event_at ON audit_event (event, at)",
        "ix_case_review_decided_on": "CREATE INDEX ix_case_review_decided_on ON case_review (decided_on)",
        "ix_outbox_case_template": "CREATE INDEX ix_outbox_case_template ON outbox (case_id, template, created_at)",
    }


def upgrade() -> None:
    for statement in index_statements(op.get_bind().dialect.name).values():
        op.execute(statement)


def downgrade() -> None:
    for name, statement in index_statements(op.get_bind().dialect.name).items():
        op.drop_index(name, table_name=statement.split(" ON ")[1].split(" ")[0])
