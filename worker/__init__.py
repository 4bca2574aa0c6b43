"""Celery worker: thin tasks around pipeline.run_job, plus the sweeper."""
