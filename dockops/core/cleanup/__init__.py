"""Unattended cleanup: dangling images planned and pruned, its cron entry, lock and metrics."""
