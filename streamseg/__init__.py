"""streamseg: real-time semantic segmentation of live video with dilated networks.

The command line is ``streamseg`` (see ``streamseg.cli``); the embedding API is ``streamseg.api.Pipeline``.
"""

__version__ = "0.1.0"
