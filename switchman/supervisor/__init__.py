"""switchman.supervisor."""
