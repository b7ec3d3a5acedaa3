"""CCSDS synchronization and channel coding (131.0-B-4, 231.0-B-4)."""
