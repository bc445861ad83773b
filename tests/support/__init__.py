"""Shared test helpers: the Unicorn oracle and guest builds."""
