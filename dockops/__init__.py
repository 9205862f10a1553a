"""dockops: Docker image work on a real engine, from cron and from make."""

__version__ = "0.1.0"
