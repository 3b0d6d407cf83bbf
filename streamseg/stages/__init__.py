"""The processing stages of the pipeline, one per module."""
