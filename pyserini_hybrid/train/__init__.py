"""Hybrid-batch training of multilingual encoders (placeholder while being written)."""
