"""switchman.policy."""
