"""The local stack: moto on loopback, provisioned like the CDK stack, with the workers running in-process.

`LocalStack` starts it; `mailwright local up` and `mailwright local demo` drive it.
"""
