"""The web preview's pages name the run's classes in their legend, with their colours, over real requests on 127.0.0.1."""

from __future__ import annotations

import html
import urllib.request

from streamseg.http.preview import WebPreviewSink, serve_preview_index
from streamseg.http.server import HttpServer
from streamseg.label_sets import CAMVID, CITYSCAPES, custom_label_set

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy, even for 127.0.0.1


def page(url: str) -> str:
    with OPENER.open(url, timeout=10) as response:
        assert response.status == 200
        return response.read().decode()


def swatch(colour) -> str:
    red, green, blue = (int(channel) for channel in colour)
    return f"rgb({red}, {green}, {blue})"


def test_the_stream_page_s_legend_is_the_label_set_s() -> None:
    with HttpServer() as server:
        WebPreviewSink(server, lambda: {}, label_set=CITYSCAPES)
        text = page(f"{server.url}/")

    for name, colour in zip(CITYSCAPES.names, CITYSCAPES.palette):
        assert f'<span class="swatch" style="background: {swatch(colour)}"></span>{name}</li>' in text
    assert "Bicyclist" not in text  # none of CamVid's


def test_the_default_legend_is_camvid_s() -> None:
    with HttpServer() as server:
        WebPreviewSink(server, lambda: {})
        text = page(f"{server.url}/")

    assert all(f"</span>{html.escape(name)}</li>" in text for name in CAMVID.names)


def test_the_index_page_names_the_classes_once_for_every_stream() -> None:
    label_set = custom_label_set(["lane <marking>", "{tiles}", "kerb"])
    with HttpServer() as server:
        serve_preview_index(server, lambda: ["cam1", "cam2"], label_set=label_set)
        text = page(f"{server.url}/")

    assert "streams/cam1/stream.mjpg" in text and "streams/cam2/stream.mjpg" in text
    assert "lane &lt;marking&gt;</li>" in text and "kerb</li>" in text
    # A class named like one of the page's placeholders stays a name.
    assert "&#123;tiles&#125;</li>" in text
    for colour in label_set.palette:
        assert swatch(colour) in text


def test_a_legend_of_many_classes_lists_them_all_in_a_box_that_scrolls() -> None:
    label_set = custom_label_set([f"class {index}" for index in range(150)])
    with HttpServer() as server:
        WebPreviewSink(server, lambda: {}, label_set=label_set)
        text = page(f"{server.url}/")

    assert text.count('<span class="swatch"') == 150
    assert "overflow-y: auto" in text
