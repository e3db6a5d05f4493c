"""ir_datasets registration (placeholder, completed below)."""


def register() -> None:
    """Register every LAReQA id with ir_datasets (idempotent)."""
