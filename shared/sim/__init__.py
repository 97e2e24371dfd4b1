"""Shadow mode's simulated audience (the hidden ground truth) and the regret runner that measures learning."""
