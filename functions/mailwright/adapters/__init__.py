"""Adapters: the ports implemented with boto3. The only runtime modules that talk to AWS."""
