"""switchman.actors."""
