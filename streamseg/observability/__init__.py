"""What a run tells its operator: Prometheus metrics, the stage monitor, log lines and progress."""
