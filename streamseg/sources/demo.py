"""A synthetic street scene drawn by the project, so the program runs with no camera and no data.

The camera drives down a two-lane street: sky, buildings with windows, trees and lamp
poles on both pavements, lane dashes that stream towards the viewer, a car ahead in the
same lane and oncoming cars in the other. Every polygon is drawn twice with the same
points, once in colour into the image and once with its CamVid class id into the label
map, so the ground truth matches the pixels exactly.

The world is in metres, camera-centred: X to the right, Y up from the road, Z forward.
Everything static (sky, road, pavement, the distant skyline) is rendered once; a frame
copies it and paints only what moves, so a 960x540 frame takes a few milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import cv2
import numpy as np

from streamseg.errors import ConfigError, InputError
from streamseg.frame import Frame
from streamseg.sources.base import Source

_RGB = tuple[int, int, int]

# Frames up to DCI 4K: a bigger scene is a typo (demo:100000x100000 asked for 30 GB a frame).
MAX_SIDE, MAX_PIXELS = 4096, 4096 * 2160

# CamVid class ids (streamseg.classes.CLASS_NAMES).
SKY, BUILDING, POLE, ROAD, PAVEMENT, TREE, SIGN, CAR = 0, 1, 2, 3, 4, 5, 6, 8

# --- the street, in metres --------------------------------------------------------------
CAMERA_HEIGHT = 1.6
EGO_SPEED = 9.0  # m/s, about 32 km/h
ROAD_LEFT, ROAD_RIGHT = -5.5, 2.0  # the camera rides in the right lane, centred on X = 0
LANE_DIVIDER = -1.75
ONCOMING_LANE = -3.5
EDGE_LINES = ((-5.35, -5.2), (1.8, 1.95))
FACADE_X = {-1: -10.0, 1: 8.0}  # building fronts; the pavement reaches them
TREE_X = {-1: -8.4, 1: 5.6}
POLE_X = {-1: -6.1, 1: 2.6}
LAYOUT_LENGTH = 240.0  # the street repeats after this many metres
NEAR_Z = 1.0  # nearer than this, geometry is clipped (the projection blows up at 0)
FAR_Z = 220.0  # beyond this only the static skyline is drawn
DETAIL_FAR_Z = 160.0  # trees and poles further away are a few pixels
WINDOW_FAR_Z = 90.0  # windows further away are under a pixel
DASH_PERIOD, DASH_LENGTH, DASH_WIDTH = 12.0, 3.0, 0.15
TREE_PERIOD, POLE_PERIOD = 17.0, 29.0
LEAD_CAR_Z, LEAD_CAR_SWING, LEAD_CAR_PERIOD = 17.0, 7.0, 9.0  # metres, metres, seconds
ONCOMING_SPEED = 11.0  # m/s, towards the camera
ONCOMING_LOOP = 150.0  # oncoming cars circle through this stretch of road ahead
ONCOMING_CARS = 3
CAR_NEAR_Z = 3.0  # nearer than this a car in the other lane has left the picture
CAR_LENGTH, CAR_WIDTH, CLEARANCE, BODY_TOP, CAR_HEIGHT = 4.3, 1.8, 0.25, 0.8, 1.45

# --- colours (RGB), close to what the CamVid footage shows --------------------------------
SKY_TOP, SKY_HORIZON = (168, 184, 206), (214, 218, 222)
ROAD_COLOUR, PAVEMENT_COLOUR, CURB_COLOUR = (86, 86, 92), (148, 140, 134), (172, 168, 160)
MARKING_COLOUR, SHADOW_COLOUR = (222, 222, 212), (46, 46, 50)
BUILDING_COLOURS = ((150, 112, 92), (176, 160, 140), (128, 116, 112), (160, 132, 104), (112, 96, 90), (190, 178, 160))
WINDOW_COLOUR = (58, 66, 78)
TREE_COLOURS = ((62, 88, 42), (78, 104, 48), (52, 76, 40), (92, 110, 56))
TRUNK_COLOUR = (84, 66, 48)
POLE_COLOUR, SIGN_COLOUR, SIGN_MARK = (112, 112, 108), (36, 74, 156), (230, 230, 230)
CAR_COLOURS = (
    (170, 30, 30), (30, 60, 140), (210, 210, 214), (30, 30, 34), (150, 154, 160), (60, 110, 70), (200, 180, 40),
)
GLASS_COLOUR, TYRE_COLOUR = (36, 44, 54), (22, 22, 24)
TAIL_LIGHT, HEAD_LIGHT = (200, 20, 24), (236, 232, 200)

_SUBPIXEL_BITS = 4  # fillPoly's fixed-point shift: far objects glide instead of jumping whole pixels
_ANGLES = np.linspace(0, 2 * np.pi, 18, endpoint=False)
_CIRCLE = np.stack([np.cos(_ANGLES), np.sin(_ANGLES)], axis=1)


@dataclass(frozen=True)
class _Camera:
    """A pinhole camera CAMERA_HEIGHT above the road, looking along +Z."""

    focal: float
    cx: float
    horizon: float

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points (N, 3), all with Z > 0, to fixed-point pixels (N, 2) for cv2.fillPoly."""
        scale = (self.focal * (1 << _SUBPIXEL_BITS)) / points[:, 2]
        pixels = np.empty((len(points), 2))
        pixels[:, 0] = points[:, 0] * scale + self.cx * (1 << _SUBPIXEL_BITS)
        pixels[:, 1] = (CAMERA_HEIGHT - points[:, 1]) * scale + self.horizon * (1 << _SUBPIXEL_BITS)
        return np.rint(pixels, out=pixels).astype(np.int32)


class _Painter:
    """Paints world-space polygons into an image and its label map, in the order given.

    Polygons are queued and projected together in one numpy call when :meth:`paint`
    runs; one call per polygon would cost more than the filling itself.
    """

    def __init__(self, camera: _Camera, image: np.ndarray, labels: np.ndarray) -> None:
        self.image = image
        self.labels = labels
        self._camera = camera
        self._queue: list[tuple[np.ndarray, _RGB, int | None]] = []

    def add(self, polygons: np.ndarray, colour: _RGB, label: int | None) -> None:
        """Queues one polygon (K, 3) or several (N, K, 3) of the same colour.

        Several polygons in one call must not overlap (fillPoly fills them even-odd).
        ``label=None`` paints a detail inside something already labelled.
        """
        if polygons.size:
            self._queue.append((polygons.reshape(-1, *polygons.shape[-2:]), colour, label))

    def paint(self) -> None:
        if not self._queue:
            return
        projected = self._camera.project(np.concatenate([polygons.reshape(-1, 3) for polygons, _, _ in self._queue]))
        start = 0
        for polygons, colour, label in self._queue:
            count, corners = polygons.shape[:2]
            pixels = list(projected[start:start + count * corners].reshape(count, corners, 2))
            start += count * corners
            cv2.fillPoly(self.image, pixels, colour, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)
            if label is not None:
                cv2.fillPoly(self.labels, pixels, label, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)
        self._queue.clear()


@dataclass(frozen=True)
class _Building:
    start: float  # world Z of its front wall, within one layout length
    length: float
    height: float
    depth: float
    colour: _RGB
    windows: np.ndarray  # (N, 4, 3) window corners on the facade, Z relative to ``start``


class DemoSource(Source):
    """An endless (or ``frames`` long) synthetic drive with exact CamVid ground truth in ``truth``.

    The same ``seed`` gives the same street and the same frames. A frame depends only on
    its index, so any one can be drawn directly with :meth:`render`, and the source can
    be iterated again from the start.
    """

    live = False

    def __init__(
        self, *, width: int = 960, height: int = 540, fps: float = 25.0, frames: int | None = None, seed: int = 0
    ) -> None:
        if width < 32 or height < 24:
            raise InputError(f"the demo scene needs at least 32x24 pixels, not {width}x{height}")
        if max(width, height) > MAX_SIDE or width * height > MAX_PIXELS:
            raise InputError(
                f"the demo scene is at most {MAX_SIDE} pixels a side and 4096x2160 in all, not {width}x{height}"
            )
        if not fps > 0:
            raise ConfigError(f"the demo frame rate must be positive, not {fps}")
        if frames is not None and frames < 0:
            raise ConfigError(f"the demo frame count cannot be negative, not {frames}")
        self.width, self.height = int(width), int(height)
        self.frames = frames
        self.frame_count = frames or 0  # 0 for endless, as for a file of unknown length
        self.seed = seed
        self._fps = float(fps)
        self._camera = _Camera(focal=0.6 * self.width, cx=self.width / 2, horizon=0.46 * self.height)
        rng = np.random.default_rng(seed)
        self._buildings = {side: _lay_out_buildings(rng, side) for side in (-1, 1)}
        self._tree_offsets = {side: rng.uniform(0, TREE_PERIOD) for side in (-1, 1)}
        self._pole_offsets = {side: rng.uniform(0, POLE_PERIOD) for side in (-1, 1)}
        self._tree_colours = rng.integers(0, len(TREE_COLOURS), size=61)
        self._car_colours = rng.integers(0, len(CAR_COLOURS), size=61)
        spacing = ONCOMING_LOOP / ONCOMING_CARS
        self._oncoming_offsets = (np.arange(ONCOMING_CARS) + rng.uniform(0.1, 0.6, ONCOMING_CARS)) * spacing
        self._background, self._background_labels = self._draw_background(rng)
        self._noise = [_signed_noise(rng, (self.height, self.width, 3), sigma=3.0) for _ in range(3)]

    @property
    def fps(self) -> float:
        return self._fps

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        while self.frames is None or index < self.frames:
            yield self.render(index)
            index += 1

    def render(self, index: int) -> Frame:
        """Frame ``index`` of the drive, with its label map in ``truth``."""
        t = index / self._fps
        ego_z = EGO_SPEED * t
        painter = _Painter(self._camera, self._background.copy(), self._background_labels.copy())
        self._queue_dashes(painter, ego_z)
        cars = self._car_positions(t)
        for x, z, _, _ in cars:
            self._queue_shadow(painter, x, z)
        # Along one side of the street, whatever is nearer the kerb is also nearer the camera
        # wherever two things overlap in the picture, so kerb-most is painted last.
        for side in (-1, 1):
            self._queue_buildings(painter, side, ego_z)
            self._queue_trees(painter, side, ego_z)
            self._queue_poles(painter, side, ego_z)
        for x, z, colour, facing_us in sorted(cars, key=lambda car: -car[1]):
            self._queue_car(painter, x, z, colour, facing_us)
        painter.paint()
        image = painter.image
        positive, negative = self._noise[index % len(self._noise)]
        cv2.add(image, positive, dst=image)  # sensor noise, so no surface is perfectly flat
        cv2.subtract(image, negative, dst=image)
        return Frame(index=index, timestamp=t, image=image, truth=painter.labels)

    # --- the static part ----------------------------------------------------------------

    def _draw_background(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Sky, road, pavement and the distant skyline, drawn once per source."""
        height, width, cam = self.height, self.width, self._camera
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        labels = np.full((height, width), SKY, np.uint8)

        fade = np.clip(ys / max(cam.horizon, 1.0), 0, 1)[..., None]
        image = np.array(SKY_TOP, np.float32) * (1 - fade) + np.array(SKY_HORIZON, np.float32) * fade
        image += _blotches(rng, (height, width), cells=(4, 8), amplitude=14.0)[..., None]  # clouds

        # Every pixel below the horizon sees a point of the road plane: find which.
        ground = ys > cam.horizon + 0.5
        depth = np.where(ground, cam.focal * CAMERA_HEIGHT / np.maximum(ys - cam.horizon, 0.5), 1e6)
        lateral = (xs - cam.cx) * depth / cam.focal
        road = ground & (lateral >= ROAD_LEFT) & (lateral <= ROAD_RIGHT)
        pavement = ground & ~road
        curb = pavement & ((np.abs(lateral - ROAD_RIGHT) < 0.25) | (np.abs(lateral - ROAD_LEFT) < 0.25))
        markings = np.zeros_like(road)
        for left, right in EDGE_LINES:
            markings |= road & (lateral >= left) & (lateral <= right)
        image[road] = ROAD_COLOUR
        image[pavement] = PAVEMENT_COLOUR
        image[curb] = CURB_COLOUR
        image[markings] = MARKING_COLOUR
        texture = rng.normal(0, 6.0, (height, width)).astype(np.float32)
        texture += _blotches(rng, (height, width), cells=(12, 20), amplitude=8.0)
        image[ground] += texture[ground][:, None]
        # Paving slabs: darker joints every metre across and every 1.2 m along.
        joints = pavement & ~curb & (depth < 30)
        joints &= (np.abs(lateral % 1.0 - 0.5) > 0.47) | (np.abs(depth % 1.2 - 0.6) > 0.56)
        image[joints] -= 22
        haze = (np.clip(depth / 160.0, 0, 0.6) * ground)[..., None]  # the far ground fades into the sky
        image = image * (1 - haze) + np.array(SKY_HORIZON, np.float32) * haze
        labels[road] = ROAD
        labels[pavement] = PAVEMENT

        painter = _Painter(cam, np.clip(image, 0, 255).astype(np.uint8), labels)
        self._queue_skyline(painter, rng)
        painter.paint()
        return painter.image, painter.labels

    def _queue_skyline(self, painter: _Painter, rng: np.random.Generator) -> None:
        """Hazy blocks at the end of the street, beyond where the moving buildings stop."""
        blocks = []
        for side in (-1, 1):
            z = FAR_Z
            while z < 600.0:
                length, height = rng.uniform(15, 40), rng.uniform(8, 30)
                front, back = FACADE_X[side], FACADE_X[side] + side * 30.0
                wall = _face(front, back, 0.0, height, z)
                facade = _side(front, 0.0, height, z, z + length)
                haze = min(0.75, 0.4 + z / 1500.0)
                colour = _blend(BUILDING_COLOURS[int(rng.integers(len(BUILDING_COLOURS)))], SKY_HORIZON, haze)
                blocks.append((z, wall, facade, colour))
                z += length + (rng.uniform(4, 12) if rng.random() < 0.4 else 0.0)
        for _, wall, facade, colour in sorted(blocks, key=lambda block: -block[0]):
            painter.add(wall, colour, BUILDING)
            painter.add(facade, colour, BUILDING)

    # --- what moves ---------------------------------------------------------------------

    def _queue_dashes(self, painter: _Painter, ego_z: float) -> None:
        starts = -(ego_z % DASH_PERIOD) + DASH_PERIOD * np.arange(int(FAR_Z / DASH_PERIOD) + 2)
        ends = starts + DASH_LENGTH
        keep = (ends > NEAR_Z) & (starts < FAR_Z)
        near, far = np.maximum(starts[keep], NEAR_Z), ends[keep]
        left, right = LANE_DIVIDER - DASH_WIDTH / 2, LANE_DIVIDER + DASH_WIDTH / 2
        dashes = np.stack(
            [_stack_points(x, 0.0, z) for x, z in ((left, near), (right, near), (right, far), (left, far))], axis=1
        )
        painter.add(dashes, MARKING_COLOUR, ROAD)  # CamVid counts lane markings as road

    def _queue_buildings(self, painter: _Painter, side: int, ego_z: float) -> None:
        front = FACADE_X[side]
        placed = []
        for building in self._buildings[side]:
            z0 = (building.start - ego_z) % LAYOUT_LENGTH
            for start in (z0, z0 - LAYOUT_LENGTH):  # the copy behind the camera may still reach past it
                if start + building.length > NEAR_Z and start < FAR_Z:
                    placed.append((start, building))
        placed.sort(key=lambda item: -item[0])
        for start, building in placed:
            colour = _blend(building.colour, SKY_HORIZON, min(0.6, max(start, 0.0) / 300.0))
            if start >= NEAR_Z:  # its front wall faces the camera and shows in the gaps
                wall = _face(front, front + side * building.depth, 0.0, building.height, start)
                painter.add(wall, _blend(colour, (0, 0, 0), 0.25), BUILDING)
            facade = _side(front, 0.0, building.height, max(start, NEAR_Z), start + building.length)
            painter.add(facade, colour, BUILDING)
        # Facades on one side never overlap each other in the picture, so all windows go in one fill.
        windows = [building.windows + (0.0, 0.0, start) for start, building in placed if start < WINDOW_FAR_Z]
        if windows:
            windows = np.concatenate(windows)
            painter.add(windows[windows[:, :, 2].min(axis=1) > NEAR_Z], WINDOW_COLOUR, None)

    def _queue_trees(self, painter: _Painter, side: int, ego_z: float) -> None:
        x = TREE_X[side]
        for z, number in _periodic(self._tree_offsets[side], TREE_PERIOD, ego_z, CAR_NEAR_Z, DETAIL_FAR_Z):
            colour = TREE_COLOURS[self._tree_colours[number % len(self._tree_colours)]]
            painter.add(_face(x - 0.15, x + 0.15, 0.0, 2.8, z), TRUNK_COLOUR, TREE)
            painter.add(_disc(x, 4.4, z, 2.0, 2.3), colour, TREE)
            if z < 50:  # leaf clumps: shade on the far side, light on the near one
                painter.add(_disc(x + 0.6 * side, 4.0, z, 1.0, 1.1), _blend(colour, (0, 0, 0), 0.3), None)
                painter.add(_disc(x - 0.5 * side, 5.1, z, 0.8, 0.8), _blend(colour, (255, 255, 200), 0.2), None)

    def _queue_poles(self, painter: _Painter, side: int, ego_z: float) -> None:
        x = POLE_X[side]
        arm_end = x - side * 1.8  # lamps hang over the road
        for z, number in _periodic(self._pole_offsets[side], POLE_PERIOD, ego_z, CAR_NEAR_Z, DETAIL_FAR_Z):
            painter.add(_face(x - 0.1, x + 0.1, 0.0, 7.2, z), POLE_COLOUR, POLE)
            painter.add(_face(min(x, arm_end), max(x, arm_end), 6.95, 7.15, z), POLE_COLOUR, POLE)
            if number % 2 == 0:  # every other pole carries a sign, just in front of it
                painter.add(_face(x - 0.35, x + 0.35, 2.2, 2.9, z - 0.05), SIGN_COLOUR, SIGN)
                painter.add(_face(x - 0.2, x + 0.2, 2.48, 2.62, z - 0.05), SIGN_MARK, None)

    def _car_positions(self, t: float) -> list[tuple[float, float, _RGB, bool]]:
        """(centre X, Z of the nearest face, colour, whether it faces the camera) of each car."""
        lead_z = LEAD_CAR_Z + LEAD_CAR_SWING * np.sin(2 * np.pi * t / LEAD_CAR_PERIOD)
        cars = [(0.0, float(lead_z), CAR_COLOURS[self._car_colours[0]], False)]
        travelled = (EGO_SPEED + ONCOMING_SPEED) * t
        for number, offset in enumerate(self._oncoming_offsets):
            lap, position = divmod(offset - travelled, ONCOMING_LOOP)
            colour = CAR_COLOURS[self._car_colours[(number * 7 + int(lap) * 3) % len(self._car_colours)]]
            cars.append((ONCOMING_LANE, CAR_NEAR_Z + float(position), colour, True))  # each lap, a new car
        return cars

    def _queue_shadow(self, painter: _Painter, x: float, z: float) -> None:
        half = CAR_WIDTH / 2 + 0.15
        shadow = _ground(x - half, x + half, z - 0.2, z + CAR_LENGTH + 0.3)
        painter.add(shadow, SHADOW_COLOUR, ROAD)  # a shadow on the road is still road

    def _queue_car(self, painter: _Painter, x: float, z: float, colour: _RGB, facing_us: bool) -> None:
        """A body box with a narrower cabin on top. The camera is above both, so body, then cabin."""
        half = CAR_WIDTH / 2
        shade, roof = _blend(colour, (0, 0, 0), 0.35), _blend(colour, (255, 255, 255), 0.15)
        painter.add(_face(x - half + 0.05, x + half - 0.05, 0.0, CLEARANCE, z + 0.3), TYRE_COLOUR, CAR)
        side_x = _visible_side(x - half, x + half)
        if side_x is not None:
            painter.add(_side(side_x, CLEARANCE, BODY_TOP, z, z + CAR_LENGTH), shade, CAR)
            for offset in (0.55, CAR_LENGTH - 1.2):
                painter.add(_side(side_x, 0.0, 0.6, z + offset, z + offset + 0.65), TYRE_COLOUR, CAR)
        painter.add(_ground(x - half, x + half, z, z + CAR_LENGTH, y=BODY_TOP), roof, CAR)
        painter.add(_face(x - half, x + half, CLEARANCE, BODY_TOP, z), colour, CAR)
        lights = HEAD_LIGHT if facing_us else TAIL_LIGHT
        painter.add(_face(x - half + 0.1, x - half + 0.4, 0.5, 0.65, z), lights, None)
        painter.add(_face(x + half - 0.4, x + half - 0.1, 0.5, 0.65, z), lights, None)

        # The cabin: glass all round, pillars in the body colour. Bonnets are longer than boots.
        left, right = x - half + 0.15, x + half - 0.15
        near = z + (1.3 if facing_us else 1.0)
        far = z + CAR_LENGTH - (1.0 if facing_us else 1.3)
        side_x = _visible_side(left, right)
        if side_x is not None:
            painter.add(_side(side_x, BODY_TOP, CAR_HEIGHT, near, far), shade, CAR)
            painter.add(_side(side_x, BODY_TOP + 0.05, CAR_HEIGHT - 0.07, near + 0.15, far - 0.15), GLASS_COLOUR, None)
        painter.add(_ground(left, right, near, far, y=CAR_HEIGHT), roof, CAR)
        painter.add(_face(left, right, BODY_TOP, CAR_HEIGHT, near), colour, CAR)
        painter.add(_face(left + 0.1, right - 0.1, BODY_TOP + 0.05, CAR_HEIGHT - 0.07, near), GLASS_COLOUR, None)


def _lay_out_buildings(rng: np.random.Generator, side: int) -> list[_Building]:
    """One side of the street: blocks of varied size and colour, sometimes with a gap between."""
    buildings = []
    z = 0.0
    while z < LAYOUT_LENGTH - 12.0:
        length = min(rng.uniform(12, 34), LAYOUT_LENGTH - z)
        height = rng.uniform(6, 17)
        colour = BUILDING_COLOURS[int(rng.integers(len(BUILDING_COLOURS)))]
        windows = _windows(FACADE_X[side], length, height)
        buildings.append(_Building(z, length, height, rng.uniform(8, 20), colour, windows))
        z += length + (rng.uniform(3, 9) if rng.random() < 0.35 else 0.0)
    return buildings


def _windows(x: float, length: float, height: float) -> np.ndarray:
    """Window corners (N, 4, 3) in rows of floors on a facade at lateral ``x``, Z from 0."""
    bottoms = np.arange(1.0, height - 2.0, 3.0) + 0.9
    lefts = np.arange(1.0, length - 1.6, 2.6)
    bottom, left = (grid.ravel() for grid in np.meshgrid(bottoms, lefts, indexing="ij"))
    top, right = bottom + 1.5, left + 1.4
    corners = ((bottom, left), (top, left), (top, right), (bottom, right))
    return np.stack([_stack_points(x, y, z) for y, z in corners], axis=1)


def _periodic(offset: float, period: float, ego_z: float, near: float, far: float) -> list[tuple[float, int]]:
    """(camera-relative Z, running number) of things placed every ``period`` metres, far first."""
    number = int(np.floor((ego_z + near - offset) / period)) + 1
    placed = []
    while (z := offset + number * period - ego_z) < far:
        placed.append((z, number))
        number += 1
    return placed[::-1]


def _visible_side(left: float, right: float) -> float | None:
    """X of the side of a box the camera sees, or None when the box is straight ahead."""
    if left > 0:
        return left
    if right < 0:
        return right
    return None


def _stack_points(x: float | np.ndarray, y: float | np.ndarray, z: float | np.ndarray) -> np.ndarray:
    return np.stack(np.broadcast_arrays(x, y, z), axis=-1).astype(np.float64)


def _face(x0: float, x1: float, y0: float, y1: float, z: float) -> np.ndarray:
    """A rectangle facing the camera at depth ``z``."""
    return np.array([[x0, y0, z], [x0, y1, z], [x1, y1, z], [x1, y0, z]], np.float64)


def _side(x: float, y0: float, y1: float, z0: float, z1: float) -> np.ndarray:
    """A rectangle in the vertical plane at lateral ``x``, running away from the camera."""
    return np.array([[x, y0, z0], [x, y1, z0], [x, y1, z1], [x, y0, z1]], np.float64)


def _ground(x0: float, x1: float, z0: float, z1: float, *, y: float = 0.0) -> np.ndarray:
    """A horizontal rectangle at height ``y`` (the road, or the top of a box)."""
    return np.array([[x0, y, z0], [x1, y, z0], [x1, y, z1], [x0, y, z1]], np.float64)


def _disc(x: float, y: float, z: float, rx: float, ry: float) -> np.ndarray:
    """An ellipse facing the camera, as polygon corners."""
    return np.column_stack([x + rx * _CIRCLE[:, 0], y + ry * _CIRCLE[:, 1], np.full(len(_CIRCLE), z)])


def _blend(colour: _RGB, other: _RGB, amount: float) -> _RGB:
    r, g, b = (int(round(a * (1 - amount) + b * amount)) for a, b in zip(colour, other))
    return r, g, b


def _blotches(
    rng: np.random.Generator, shape: tuple[int, int], *, cells: tuple[int, int], amplitude: float
) -> np.ndarray:
    """Smooth low-frequency variation: a coarse random grid blown up with cubic interpolation."""
    coarse = rng.normal(0, amplitude, cells).astype(np.float32)
    return cv2.resize(coarse, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def _signed_noise(
    rng: np.random.Generator, shape: tuple[int, int, int], *, sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian noise split into a part to add and a part to subtract, both uint8, for saturating cv2 ops."""
    noise = np.rint(rng.normal(0, sigma, shape))
    return np.clip(noise, 0, 255).astype(np.uint8), np.clip(-noise, 0, 255).astype(np.uint8)
