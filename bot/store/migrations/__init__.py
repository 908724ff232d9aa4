"""Alembic's script directory for the store: `env.py`, one file a revision in `versions/`, and `legacy`
(stores from before Alembic brought to the baseline)."""
