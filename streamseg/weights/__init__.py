"""Trained weights shipped with the package (state dicts and model cards)."""
