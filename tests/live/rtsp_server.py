#!/usr/bin/python3
"""A real RTSP server for the live tests: GStreamer's rtsp-server serving one H.264 MP4 file.

Runs under the system python3 (PyGObject and GStreamer come from Debian packages, not from
the project's virtual environment). The file is sent without re-encoding, paced in real
time; each client gets its own session from the start of the file.

    /usr/bin/python3 rtsp_server.py PORT MOUNT FILE

Prints "ready rtsp://127.0.0.1:PORT/MOUNT" on stdout once it listens, then serves until killed.
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> int:
    port, mount, path = sys.argv[1], sys.argv[2].strip("/"), sys.argv[3]
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    location = path.replace("\\", "\\\\").replace('"', '\\"')
    factory.set_launch(
        f'( filesrc location="{location}" ! qtdemux ! h264parse config-interval=-1 '
        "! rtph264pay name=pay0 pt=96 config-interval=-1 )"
    )
    factory.set_shared(False)
    server.get_mount_points().add_factory(f"/{mount}", factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{port}", file=sys.stderr)
        return 1
    print(f"ready rtsp://127.0.0.1:{port}/{mount}", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
