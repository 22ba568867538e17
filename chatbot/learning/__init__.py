"""The learning loop's core side: model versions and promotion (registry), retrain requests, the frozen
evaluation sets and the console's models page; the training itself runs in the workers (inference)."""
