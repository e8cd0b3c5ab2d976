"""letters as PDF stored on the case; outbox delivery leases, backoff and failure

Revision ID: 0003b
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa


revision = "0003b"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claim_token", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True))
    # The old worker stopped retrying after 5 attempts without saying so: say so now.
    op.execute("UPDATE outbox SET failed_at = created_at WHERE sent_at IS NULL AND attempts >= 5")

    op.create_table(
        "letter_document",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("pdf", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["outbox_id"], ["outbox.id"]),
        sa.ForeignKeyConstraint(["case_id"], ["case_review.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("outbox_id"),
    )
    with op.batch_alter_table("letter_document", schema=None) as batch_op:
        batch_op.create_index("ix_letter_document_case_id", ["case_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("letter_document", schema=None) as batch_op:
        batch_op.drop_index("ix_letter_document_case_id")
    op.drop_table("letter_document")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("failed_at")
        batch_op.drop_column("retry_at")
        batch_op.drop_column("claimed_until")
        batch_op.drop_column("claim_token")
