"""inbox indexes: ready tasks in due and title order per role (and agency); open cases by stage;
case_agency (the agencies of each case as rows, for the coordinator's agency filter)

Measured at 100,000 cases / 1,000,000 task rows in docs/performance-pages.md.

Revision ID: 0003
Revises: 0002
"""
import json

from alembic import op
import sqlalchemy as sa


revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

DUE_MISSING = sa.text("(due IS NULL)")


def upgrade() -> None:
    case_agency = op.create_table(
        "case_agency",
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("case_review.id"), primary_key=True),
        sa.Column("agency", sa.String(length=40), primary_key=True),
    )
    op.create_index("ix_case_agency_agency", "case_agency", ["agency", "case_id"])
    cases = op.get_bind().execute(sa.text("SELECT id, agencies FROM case_review")).all()
    rows = [{"case_id": case_id, "agency": code}
            for case_id, agencies in cases
            for code in dict.fromkeys(json.loads(agencies) if isinstance(agencies, str) else agencies or [])]
    if rows:
        op.bulk_insert(case_agency, rows)
    with op.batch_alter_table("human_task") as batch_op:
        batch_op.drop_index("ix_human_task_role_agency")
    op.create_index("ix_human_task_inbox_due", "human_task", ["role", DUE_MISSING, "due", "case_id", "id"])
    op.create_index("ix_human_task_inbox_agency_due", "human_task",
                    ["role", "agency", DUE_MISSING, "due", "case_id", "id"])
    op.create_index("ix_human_task_inbox_title", "human_task", ["role", "title", "due", "id"])
    op.create_index("ix_human_task_inbox_agency_title", "human_task", ["role", "agency", "title", "due", "id"])
    op.create_index("ix_case_review_open_stage", "case_review", ["stage", "id"],
                    postgresql_where=sa.text("status = 'open'"), sqlite_where=sa.text("status = 'open'"))


def downgrade() -> None:
    op.drop_index("ix_case_review_open_stage", table_name="case_review")
    for name in ("ix_human_task_inbox_agency_title", "ix_human_task_inbox_title",
                 "ix_human_task_inbox_agency_due", "ix_human_task_inbox_due"):
        op.drop_index(name, table_name="human_task")
    op.create_index("ix_human_task_role_agency", "human_task", ["role", "agency"])
    op.drop_index("ix_case_agency_agency", table_name="case_agency")
    op.drop_table("case_agency")
