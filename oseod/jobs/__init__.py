"""The processing engine: the durable job queue's workers and the processors
that make the items (see :mod:`oseod.jobs.engine`)."""
