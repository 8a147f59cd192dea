"""What a run leaves behind: plots, predictions and the exported model."""
