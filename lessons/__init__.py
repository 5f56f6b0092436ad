"""Lessons: the lab teaches, then checks what the trainee found in its own telemetry (python -m lessons)."""
