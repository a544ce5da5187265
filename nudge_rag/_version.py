"""The package version, in a module of its own so that modules inside the package read it
without importing the package facade (``nudge_rag/__init__.py``) that lazily imports them."""

__version__ = "0.1.0"
