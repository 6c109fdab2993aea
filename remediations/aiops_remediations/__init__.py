"""Remediation plugins for aiops: command, webhook, retrain, rollback, restart. Found through entry points."""
