"""Link physics: orbits, contacts, RF and laser link models (filled in by later work)."""
