"""Scale-out on Ray (the optional ``[ray]`` extra): the same parts, placed by Ray across machines.

- ``replica``: the network as batched inference replicas (actors holding a backend and a
  ``Batcher``), on GPU nodes when the backend needs a GPU; and ``ReplicaBackend``, what a
  stream's stages call instead of a local backend, which reaches the replicas through a
  ``ray.util.ActorPool``.
- ``stream_actor``: one actor per stream, running the ordinary single-stream pipeline (decode,
  preprocess, stateful stages, render, sinks) with a ``ReplicaBackend``, on CPU nodes.
- ``serve``: ``streamseg run --ray ADDRESS``, which starts them and waits for the streams.

Ray restarts what dies (``max_restarts``) and retries the calls that were in flight
(``max_task_retries``); placement follows each actor's declared resources. Nothing here
schedules anything itself. Importing this package does not import Ray: only using it does.
"""
