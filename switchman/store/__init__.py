"""The embedded SQLite store: jobs, spend and learned statistics."""

from switchman.store._db import JOB_STATUSES, JobRecord, JobStatus, StoreError, default_db_path
from switchman.store._sqlite import JobStore, StoreUnavailable, open_store

__all__ = [
    "JOB_STATUSES",
    "JobRecord",
    "JobStatus",
    "JobStore",
    "StoreError",
    "StoreUnavailable",
    "default_db_path",
    "open_store",
]
