"""Framework integrations. Each module imports its framework; import them explicitly."""
