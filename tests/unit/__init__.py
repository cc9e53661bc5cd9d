"""Unit tests: no network, no moto; ports are the in-memory fakes of `mailwright_tools.fakes`."""
