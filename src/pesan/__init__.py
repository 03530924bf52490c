"""pesan: chat booking for wellness marketplaces."""

__version__ = "0.1.0"
