"""Benchmarks and fault injection for mailwright: `make bench` and `make chaos`.

Never shipped to Lambda. Each module measures one thing and returns plain
JSON-ready dicts; `bench.run` gathers them into `bench/results.json` and
`docs/benchmarks.md`.
"""
