"""Operations: structured logs, Prometheus metrics, the health/metrics HTTP server, shutdown.

Nothing here imports discord or torch: the Discord layer and the trainer call these modules."""
