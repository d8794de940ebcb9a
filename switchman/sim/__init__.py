"""switchman.sim."""
