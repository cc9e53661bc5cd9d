"""mailwright runtime: the code that runs in the Lambda functions.

Layered as thin handlers (`handlers/`) over domain services over adapters
(`adapters/`, the only modules that hold boto3 clients).
"""

__version__ = "0.1.0"
