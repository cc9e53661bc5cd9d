"""Local tooling for mailwright: the CLI, the local stack and the producer-side helpers.

Never shipped to Lambda; it may import the runtime (`mailwright`), not the other way round.
"""
