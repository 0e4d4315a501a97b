"""HTTP API routers: ``ingest`` (devices), ``auth``, ``events``, ``hazards``, ``dashboard``,
``admin`` (users) and ``ops`` (health, metrics)."""
