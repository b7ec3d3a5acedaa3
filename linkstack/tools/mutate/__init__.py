"""Mutation testing (make mutate): see linkstack/tools/mutate/__main__.py."""
