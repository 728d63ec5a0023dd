"""mmbot: a Polymarket complete-set market maker on Trio."""

__version__ = "0.1.0"
