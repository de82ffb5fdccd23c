"""Training: configs, losses, LR schedules, the compiled step, the loop, checkpoints and run directories."""
