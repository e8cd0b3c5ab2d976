"""audit trail as an append-only hash chain; indexes for linked cases

Adds `seq`, `prev_hash` and `hash` to audit_event and chains the rows already there (in id
order), after taking applicants' free text out of their detail (withdrawal and escalation
reasons were copied there before). On PostgreSQL and SQLite a trigger then refuses UPDATE and
DELETE on audit_event (and TRUNCATE on PostgreSQL).

Also indexes case_review on lower(applicant_name), lower(victim_name) and lower(applicant_email),
so finding a new application's linked cases (engine/linked.py) does not scan every case.

Revision ID: 0004
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

from engine.audit import GENESIS, content_of, event_hash
from engine.models import UTCDateTime

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None

FREE_TEXT_KEYS = ("withdrawal_reason", "escalation_reason")
LINK_INDEXES = {"ix_case_review_lower_applicant_name": "applicant_name",
                "ix_case_review_lower_victim_name": "victim_name",
                "ix_case_review_lower_applicant_email": "applicant_email"}

PG_REFUSE = """
CREATE OR REPLACE FUNCTION audit_event_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_event is append-only: % refused', TG_OP;
END
$$"""


def upgrade() -> None:
    for column in (sa.Column("seq", sa.Integer(), nullable=True), sa.Column("prev_hash", sa.String(length=64)),
                   sa.Column("hash", sa.String(length=64))):
        op.add_column("audit_event", column)  # in place on both databases (see downgrade)
    _chain_existing_rows()
    op.create_index("ix_audit_event_seq", "audit_event", ["seq"], unique=True)
    op.create_index("ix_audit_event_hash", "audit_event", ["hash"], unique=True)
    _refuse_changes()
    for name, column in LINK_INDEXES.items():
        op.create_index(name, "case_review", [sa.text(f"lower({column})")])


def downgrade() -> None:
    for name in LINK_INDEXES:
        op.drop_index(name, table_name="case_review")
    _allow_changes()
    op.drop_index("ix_audit_event_hash", table_name="audit_event")
    op.drop_index("ix_audit_event_seq", table_name="audit_event")
    # Not a batch (copy-and-move) alteration on SQLite: that would lose other features' expression
    # indexes on audit_event, which it cannot reflect. SQLite 3.35+ drops columns in place.
    for name in ("hash", "prev_hash", "seq"):
        op.drop_column("audit_event", name)


def _chain_existing_rows() -> None:
    audit_event = sa.table("audit_event", sa.column("id", sa.Integer), sa.column("at", UTCDateTime),
                           sa.column("actor", sa.String), sa.column("event", sa.String),
                           sa.column("case_id", sa.Integer), sa.column("stage_before", sa.String),
                           sa.column("stage_after", sa.String), sa.column("detail", sa.JSON),
                           sa.column("seq", sa.Integer), sa.column("prev_hash", sa.String),
                           sa.column("hash", sa.String))
    bind = op.get_bind()
    rows = bind.execute(sa.select(audit_event.c.id, audit_event.c.at, audit_event.c.actor, audit_event.c.event,
                                  audit_event.c.case_id, audit_event.c.stage_before, audit_event.c.stage_after,
                                  audit_event.c.detail).order_by(audit_event.c.id)).all()
    prev_hash, updates = GENESIS, []
    for seq, row in enumerate(rows, start=1):
        detail, scrubbed = _without_free_text(row.detail or {})
        digest = event_hash(content_of(at=row.at, actor=row.actor, event=row.event, case_id=row.case_id,
                                       stage_before=row.stage_before, stage_after=row.stage_after, detail=detail),
                            prev_hash)
        updates.append({"row_id": row.id, "seq": seq, "prev": prev_hash, "digest": digest,
                        "new_detail": detail, "scrubbed": scrubbed})
        prev_hash = digest
    chain = (sa.update(audit_event).where(audit_event.c.id == sa.bindparam("row_id"))
             .values(seq=sa.bindparam("seq"), prev_hash=sa.bindparam("prev"), hash=sa.bindparam("digest")))
    if updates:
        bind.execute(chain, [{k: u[k] for k in ("row_id", "seq", "prev", "digest")} for u in updates])
    cleaned = [{"row_id": u["row_id"], "new_detail": u["new_detail"]} for u in updates if u["scrubbed"]]
    if cleaned:
        bind.execute(sa.update(audit_event).where(audit_event.c.id == sa.bindparam("row_id"))
                     .values(detail=sa.bindparam("new_detail", type_=sa.JSON)), cleaned)


def _without_free_text(detail: dict) -> tuple[dict, bool]:
    found = [key for key in FREE_TEXT_KEYS if key in detail]
    if not found:
        return detail, False
    kept = {k: v for k, v in detail.items() if k not in found}
    kept["withheld"] = sorted(set(kept.get("withheld", [])) | set(found))
    return kept, True


def _refuse_changes() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_REFUSE)
        op.execute("CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event "
                   "FOR EACH ROW EXECUTE FUNCTION audit_event_refuse_change()")
        op.execute("CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event "
                   "FOR EACH STATEMENT EXECUTE FUNCTION audit_event_refuse_change()")
    else:
        for operation in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER audit_event_no_{operation.lower()} BEFORE {operation} ON audit_event "
                       f"BEGIN SELECT RAISE(ABORT, 'audit_event is append-only: {operation} refused'); END")


def _allow_changes() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event")
        op.execute("DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event")
        op.execute("DROP FUNCTION IF EXISTS audit_event_refuse_change()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_delete")
