"""The ``cf-access`` helper CLI (``python -m components.cli``); see ``__main__.py``."""
