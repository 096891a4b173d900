"""Durable state: the interaction log, item and user documents, snapshot records, tokens and jobs.

SQLite by default, PostgreSQL where configured; one shared SQL base class.
"""
