"""Infra tests: the synthesized CloudFormation template, its IAM and the bundled assets."""
