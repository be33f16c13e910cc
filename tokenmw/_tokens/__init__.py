"""Tokens: shared encodings, the count cache, billing rules, images, prices and model data."""
