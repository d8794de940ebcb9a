"""switchman.gateway."""
