"""Load test of the lab: the locustfile, its load shapes and response checks, the report and the benchmark."""
