"""Lambda entry points. Each is decorators, parse, one call into the domain, return."""
