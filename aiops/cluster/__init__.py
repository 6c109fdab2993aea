"""Several daemon replicas sharing one store: who is there (membership)."""
