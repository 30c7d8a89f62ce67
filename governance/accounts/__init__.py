"""Accounts: people and services with an API token and a role, their contacts and notifications."""
