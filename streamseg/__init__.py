"""streamseg: real-time semantic segmentation of live video with dilated networks.

The command line is ``streamseg`` (see ``streamseg.cli``); the embedding API is ``streamseg.api.Pipeline``.
Both are thin layers on one run, whatever its number of streams.

The package, by job:

- ``cli``, ``api``: the command line and the embedding API.
- ``config``, ``options``: every run option, declared once; ``errors``: what a user can fix.
- ``pipeline``: the run. ``assemble`` is the one assembler, ``streams`` the run of one stream or many,
  ``runner`` one stream's threads, ``batcher`` one backend shared by every stream.
- ``sources``, ``stages``, ``sinks``: where frames come from, what is done to them, where they go.
- ``models``, ``backends``: the networks and what runs them; ``weights``: what ships.
- ``refine``, ``temporal``: the fully connected CRF and optical-flow smoothing.
- ``image``: pixel work around the network (preprocessing, resizing, labels, the overlay).
- ``http``: the HTTP server, the /streams routes, the live preview.
- ``observability``: Prometheus metrics, the stage monitor, logs and progress.
- ``eval``, ``bench``: quality on labelled folders, and speed.
- ``cluster``: the same run on Ray. ``training``, ``data``: training on CamVid.
- ``plugins``, ``registry``: one registry for every kind of part, built-ins and plugins alike.
"""

__version__ = "0.1.0"
