"""Backtests: what would aiops have done over this history?

A backtest replays each check over stored history on a simulated clock, through the check's real detectors
and the engine's real incident manager, executor and outbox (for-durations, guards, cooldowns, budgets, the
ladder, flap control); remediations and notifiers are replaced by recording stand-ins, so nothing is run and
nothing is sent. ``aiops tune`` uses the same replay as the engine of a search over thresholds and durations.
"""
