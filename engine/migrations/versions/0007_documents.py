"""documents uploaded to a case where a form asks for them (PDF, JPG, PNG, Word)

Revision ID: 0007
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa


revision = "0007"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "document",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_by", sa.String(length=320), nullable=False),
        sa.Column("agency", sa.String(length=40), nullable=True),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["case_review.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("document") as batch_op:
        batch_op.create_index("ix_document_case_id", ["case_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("document") as batch_op:
        batch_op.drop_index("ix_document_case_id")
    op.drop_table("document")
