"""Alembic revision scripts, one per schema version (``NNNN_description.py``)."""
