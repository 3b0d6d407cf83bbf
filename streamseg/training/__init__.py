"""Training the project's own weights."""
