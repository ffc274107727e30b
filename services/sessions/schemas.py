"""Sessions wire models: availability, slots and sessions arrive with their routes."""
