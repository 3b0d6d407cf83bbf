"""A Foxglove client of the live view at ws://127.0.0.1:PORT for the bench: it subscribes to every topic, then either
never reads again (``stalled``) or reads everything (``reading``).

Usage: python foxglove_bench_client.py stalled|reading PORT READY_FILE. It writes READY_FILE once subscribed (the
topics), and a reading client adds, when killed (SIGTERM), how many messages it got of each topic.
"""

import signal
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from foxglove_client import FoxgloveClient  # noqa: E402

mode, port, ready = sys.argv[1], sys.argv[2], Path(sys.argv[3])
client = FoxgloveClient(f"ws://127.0.0.1:{port}", wait_s=600)
client.wait_for_topics("/streamseg/classes")
deadline = time.monotonic() + 10
while len(client.channels) < 6 and time.monotonic() < deadline:  # the stream's five topics and the class table
    client.read_one(timeout_s=10)
client.subscribe(*client.channels)
ready.write_text("subscribed: " + " ".join(sorted(client.channels)) + "\n")
received: Counter = Counter()


def report(*_: object) -> None:
    with ready.open("a") as file:
        file.write(f"received: {dict(sorted(received.items()))}\n")
    sys.exit(0)


signal.signal(signal.SIGTERM, report)
while True:
    if mode == "stalled":
        time.sleep(3600)
    else:
        try:
            message = client.read_one(timeout_s=3600)
        except Exception:  # the run ended and closed the connection
            while True:
                time.sleep(3600)
        if message is not None:
            received[message.topic] += 1
