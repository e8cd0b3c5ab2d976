"""applicant links: private "track your case" and consent links (only the token's sha256 is kept)

Revision ID: 0003a
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa


revision = "0003a"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "applicant_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("sent_to", sa.String(length=520), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["case_review.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("applicant_link") as batch_op:
        batch_op.create_index("ix_applicant_link_case_id", ["case_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("applicant_link") as batch_op:
        batch_op.drop_index("ix_applicant_link_case_id")
    op.drop_table("applicant_link")
