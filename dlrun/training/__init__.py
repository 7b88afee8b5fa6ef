"""Training: the loop, checkpoints, callbacks, progress and evaluation."""
