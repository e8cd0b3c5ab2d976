"""merge the feature branches (inbox, applicant links, letter PDFs, audit chain, studio drafts,
report indexes, documents, application drafts): later migrations follow this one

Revision ID: 0009
Revises: 0003, 0003a, 0003b, 0004, 0005, 0006, 0007, 0008
"""

revision = "0009"
down_revision = ("0003", "0003a", "0003b", "0004", "0005", "0006", "0007", "0008")
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to change: the branches touch different tables."""


def downgrade() -> None:
    """Nothing to change."""
