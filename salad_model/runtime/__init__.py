"""Runtime model: what turns a request into motion (validation, networks, sampling, editing, pipeline)."""
