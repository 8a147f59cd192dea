"""A run's life: its folders, checkpoints, resume, stops, locks and CSV log."""
