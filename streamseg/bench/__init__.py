"""Measuring the pipeline: ``streamseg bench`` (model alone, naive loop, pipelined) and its report."""
