"""The mailwright CDK app: one construct per concern, wired by `stack.py`."""
