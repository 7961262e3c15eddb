"""Shared pieces of the training recipes: metrics and the model-card writer."""
