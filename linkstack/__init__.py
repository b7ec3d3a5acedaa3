"""linkstack: a CCSDS space-to-ground link and protocol stack emulator."""

__version__ = "0.1.0"
