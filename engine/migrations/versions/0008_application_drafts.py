"""application drafts: answers to /apply kept between pages (the browser holds only a key)

Revision ID: 0008
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa


revision = "0008"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "application_draft",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
    )
    with op.batch_alter_table("application_draft") as batch_op:
        batch_op.create_index("ix_application_draft_expires_at", ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("application_draft") as batch_op:
        batch_op.drop_index("ix_application_draft_expires_at")
    op.drop_table("application_draft")
