"""Sessions: availability across time zones, scheduling, calendar feeds."""
