"""Live updates: each user's writes pushed to that user's open event streams."""
