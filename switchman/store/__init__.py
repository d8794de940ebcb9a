"""The embedded SQLite store: jobs, spend and learned statistics."""

from switchman.store._sqlite import (
    JOB_STATUSES,
    JobRecord,
    JobStatus,
    JobStore,
    StoreError,
    StoreUnavailable,
    default_db_path,
    open_store,
)

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
