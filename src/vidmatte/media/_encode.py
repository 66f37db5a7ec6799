"""Encoders for every output format, written to a temporary name and renamed when complete."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
import zipfile
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from vidmatte._models import OutputFormat, OutputSpec
from vidmatte.media._audio import AudioCarrier
from vidmatte.media._composite import Compositor, check_output
from vidmatte.media._errors import media_error

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["FrameWriter", "open_writer", "temporary_sibling"]

_PNG_FRAME = re.compile(r"^frame_\d+\.png$")


class FrameWriter(Protocol):
    """Receives frames in order; the output appears at its final path only on :meth:`close`.

    :meth:`write` is :meth:`prepare` (compose and convert: any thread, one at a
    time) followed by :meth:`write_prepared` (encode and mux: in order), so a
    pipeline can run the two on different threads.
    """

    frames_written: int

    def write(self, rgb: NDArray[np.uint8] | None, alpha: NDArray[np.uint8], source: Any = None) -> None:
        """Add one frame (RGB plus its matte, 255 = foreground).

        ``source`` may be the decoded ``av.VideoFrame`` the RGB came from: alpha
        and composite outputs then work on its YUV planes instead of converting
        RGB back, and ``rgb`` may be ``None`` (converted from ``source`` if needed).
        """

    def prepare(self, rgb: NDArray[np.uint8] | None, alpha: NDArray[np.uint8], source: Any = None) -> Any:
        """The encoder-ready form of one frame."""

    def write_prepared(self, prepared: Any) -> None:
        """Encode one :meth:`prepare` result (frames in order)."""

    def close(self) -> None:
        """Finish the file and move it to its final name."""

    def abort(self) -> None:
        """Stop and remove everything written so far."""


def temporary_sibling(dest: Path) -> Path:
    """A hidden temporary name next to ``dest`` (same file system, so the final rename is atomic)."""
    return dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")


def _check_destination(dest: Path) -> None:
    parent = dest.parent if str(dest.parent) else Path(".")
    if not parent.is_dir():
        raise media_error(dest, "cannot be written: its folder does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise media_error(dest, "cannot be written: permission denied in its folder")
    if dest.is_dir() and any(dest.iterdir()) and not all(_PNG_FRAME.match(c.name) for c in dest.iterdir()):
        raise media_error(dest, "is a folder that already holds other files; choose a new name")


def _replace(tmp: Path, dest: Path) -> None:
    """Move ``tmp`` onto ``dest``; a previous output folder at ``dest`` is replaced."""
    if tmp.is_dir() and dest.is_dir():
        old = temporary_sibling(dest)
        os.replace(dest, old)
        os.replace(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
        return
    os.replace(tmp, dest)


_VIDEO = {
    # format: (muxer, codec, alpha pix_fmt, opaque pix_fmt, audio codec)
    OutputFormat.WEBM: ("webm", "libvpx-vp9", "yuva420p", "yuv420p", "libopus"),
    OutputFormat.MOV: ("mov", "prores_ks", "yuva444p10le", "yuv422p10le", "aac"),
    OutputFormat.MP4: ("mp4", "libx264", "yuv420p", "yuv420p", "aac"),
    OutputFormat.MATTE: ("mp4", "libx264", "yuv420p", "yuv420p", "aac"),
}


def _video_options(codec: str, width: int, height: int, fps: Fraction, alpha: bool) -> dict[str, str]:
    if codec == "libvpx-vp9":
        # Realtime mode: VP9's "good" mode is ~10x slower for little gain on mattes.
        bitrate = int(min(12e6, max(300e3, width * height * float(fps) * 0.07)))
        return {
            "deadline": "realtime",
            "cpu-used": "8",
            "row-mt": "1",
            "lag-in-frames": "0",
            "b": str(bitrate),
        }
    if codec == "prores_ks":
        # Profile 4 is ProRes 4444 (the one with alpha); 3 is 422 HQ.
        return {"profile": "4" if alpha else "3", "vendor": "apl0"}
    return {"preset": "veryfast", "crf": "20"}


class VideoFileWriter:
    """WebM, MOV, MP4 and matte videos through PyAV, with the source's audio when kept."""

    def __init__(
        self,
        dest: Path,
        output: OutputSpec,
        *,
        width: int,
        height: int,
        fps: Fraction,
        audio_from: Path | None = None,
    ) -> None:
        import av

        self.dest = dest
        self.frames_written = 0
        self.compositor = Compositor(output, width, height)
        muxer, codec, alpha_fmt, opaque_fmt, audio_codec = _VIDEO[output.format]
        self.yuv420 = codec == "libx264"
        if self.yuv420:
            # 4:2:0 H.264 needs even sizes: drop the odd last row/column.
            width, height = width - width % 2, height - height % 2
        self.width, self.height = width, height
        self.fps = fps
        self.tmp = temporary_sibling(dest)
        try:
            self._container: Any = av.open(str(self.tmp), "w", format=muxer)
        except (av.FFmpegError, OSError) as exc:
            raise media_error(dest, "cannot be written", exc) from None
        try:
            stream: Any = self._container.add_stream(
                codec, rate=fps, options=_video_options(codec, width, height, fps, self.compositor.alpha)
            )
            self._stream = stream
            self._stream.width = width
            self._stream.height = height
            self._stream.pix_fmt = alpha_fmt if self.compositor.alpha else opaque_fmt
            self._stream.thread_count = os.cpu_count() or 2
            self._stream.codec_context.time_base = Fraction(1) / fps
            self._input_format = "rgba" if self.compositor.alpha else "gray" if self.compositor.matte else "rgb24"
            # Alpha output from a 4:2:0 source: its Y, U and V planes go to the encoder as they are.
            self._reuse_planes = self.compositor.alpha and not self.yuv420
            from av.video.reformatter import VideoReformatter

            self._pix_fmt = str(self._stream.pix_fmt)
            self._reformatter = VideoReformatter()
            # Composite output from a 4:2:0 source: blended in YUV (no RGB conversion either way).
            self._composite_planes = (
                not self.compositor.alpha
                and not self.compositor.matte
                and self._pix_fmt == "yuv420p"
                and width % 2 == 0
                and height % 2 == 0
            )
            self._background_planes: list[NDArray[np.uint16]] | None = None
            self._audio: AudioCarrier | None = None
            if audio_from is not None and output.keep_audio:
                self._audio = AudioCarrier(audio_from, self._container, audio_codec, trim=output.trim)
        except BaseException:
            self._container.close()
            self.tmp.unlink(missing_ok=True)
            raise

    def prepare(self, rgb: NDArray[np.uint8] | None, alpha: NDArray[np.uint8], source: Any = None) -> Any:
        """An ``av.VideoFrame`` for the encoder, in the stream's pixel format."""
        import av

        if self._reuse_planes and _plain_420(source, self.width, self.height):
            frame = _with_alpha(source, alpha)
        elif self._composite_planes and _plain_420(source, self.width, self.height):
            frame = self._composite_yuv(source, alpha)
        else:
            rgb = _rgb(rgb, source)
            if self.yuv420:
                rgb, alpha = rgb[: self.height, : self.width], alpha[: self.height, : self.width]
            picture = self.compositor.compose(rgb, alpha)
            frame = av.VideoFrame.from_ndarray(picture, format=self._input_format)
        if frame.format.name != self._pix_fmt:
            # Converted here, on the caller's thread, so the encoding thread only encodes.
            frame = self._reformatter.reformat(frame, format=self._pix_fmt)
        return frame

    def _composite_yuv(self, source: Any, alpha: NDArray[np.uint8]) -> Any:
        """Blend ``source`` over the background plane by plane, in YUV 4:2:0: no RGB round trip."""
        import av
        import numpy as np

        if self._background_planes is None:
            background = av.VideoFrame.from_ndarray(self.compositor.background_rgb(), format="rgb24")
            planar = self._reformatter.reformat(background, format="yuv420p")
            self._background_planes = [_plane(planar, i).astype(np.uint16) for i in range(3)]
        out = av.VideoFrame(source.width, source.height, "yuv420p")
        weight = alpha.astype(np.uint16)
        h, w = weight.shape
        # Chroma is subsampled 2x2: so is the matte that blends it.
        half = weight[: h - h % 2, : w - w % 2].reshape(h // 2, 2, w // 2, 2).sum(axis=(1, 3), dtype=np.uint16)
        half = (half + 2) >> 2
        for index in range(3):
            a = weight if index == 0 else half
            mixed = _plane(source, index).astype(np.uint16) * a
            mixed += self._background_planes[index][: a.shape[0], : a.shape[1]] * (255 - a)
            mixed += 128
            mixed += mixed >> 8
            target = _plane(out, index)
            target[: a.shape[0], : a.shape[1]] = mixed >> 8
        out.colorspace = source.colorspace
        out.color_range = source.color_range
        return out

    def write_prepared(self, prepared: Any) -> None:
        """Encode one frame (and the audio up to its end)."""
        prepared.pts = self.frames_written
        prepared.time_base = self._stream.codec_context.time_base
        for packet in self._stream.encode(prepared):
            self._container.mux(packet)
        self.frames_written += 1
        if self._audio is not None:
            self._audio.feed_until(self.frames_written / float(self.fps))

    def write(self, rgb: NDArray[np.uint8] | None, alpha: NDArray[np.uint8], source: Any = None) -> None:
        """Encode one frame (and the audio up to its end)."""
        self.write_prepared(self.prepare(rgb, alpha, source))

    def close(self) -> None:
        """Flush the encoders, close the file and rename it into place."""
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            if self._audio is not None:
                self._audio.finish(self.frames_written / float(self.fps))
            self._container.close()
        except BaseException:
            self.abort()
            raise
        _replace(self.tmp, self.dest)

    def abort(self) -> None:
        """Close and delete the temporary file."""
        if self._audio is not None:
            self._audio.abort()
        with contextlib.suppress(Exception):  # already failing; the temporary file goes regardless
            self._container.close()
        self.tmp.unlink(missing_ok=True)


class PngWriter:
    """RGBA (or composited RGB) PNG frames into a folder or a zip (stored: PNG is compressed already)."""

    def __init__(self, dest: Path, output: OutputSpec, *, width: int, height: int) -> None:
        import av

        self.dest = dest
        self.frames_written = 0
        self.compositor = Compositor(output, width, height)
        self.tmp = temporary_sibling(dest)
        self._zip: zipfile.ZipFile | None = None
        try:
            if output.format is OutputFormat.ZIP:
                self._zip = zipfile.ZipFile(self.tmp, "w", compression=zipfile.ZIP_STORED)
            else:
                self.tmp.mkdir()
        except OSError as exc:
            raise media_error(dest, "cannot be written", exc) from None
        self._format = "rgba" if self.compositor.alpha else "gray" if self.compositor.matte else "rgb24"
        self._codec: Any = av.CodecContext.create("png", "w")
        self._codec.width, self._codec.height = width, height
        self._codec.pix_fmt = self._format
        self._codec.time_base = Fraction(1, 25)
        # Fast zlib: PNG sizes barely change, encoding gets several times faster.
        self._codec.options = {"compression_level": "1"}

    def prepare(self, rgb: NDArray[np.uint8] | None, alpha: NDArray[np.uint8], source: Any = None) -> bytes:
        """The PNG file of one frame."""
        import av

        picture = self.compositor.compose(_rgb(rgb, source), alpha)
        frame = av.VideoFrame.from_ndarray(picture, format=self._format)
        return b"".join(bytes(p) for p in self._codec.encode(frame))

    def write_prepared(self, prepared: Any) -> None:
        """Store one PNG as ``frame_NNNNNN.png``."""
        name = f"frame_{self.frames_written:06d}.png"
        try:
            if self._zip is not None:
                self._zip.writestr(name, prepared)
            else:
                (self.tmp / name).write_bytes(prepared)
        except OSError as exc:
            self.abort()
            raise media_error(self.dest, "cannot be written", exc) from None
        self.frames_written += 1

    def write(self, rgb: NDArray[np.uint8] | None, alpha: NDArray[np.uint8], source: Any = None) -> None:
        """Encode and store one frame."""
        self.write_prepared(self.prepare(rgb, alpha, source))

    def close(self) -> None:
        """Finish the archive or folder and rename it into place."""
        if self._zip is not None:
            self._zip.close()
        _replace(self.tmp, self.dest)

    def abort(self) -> None:
        """Delete everything written so far."""
        if self._zip is not None:
            self._zip.close()
            self.tmp.unlink(missing_ok=True)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _rgb(rgb: NDArray[np.uint8] | None, source: Any) -> NDArray[np.uint8]:
    if rgb is not None:
        return rgb
    if source is None:
        raise ValueError("a frame needs its RGB pixels or its decoded source")
    from vidmatte.media._decode import DecodedFrame, frame_rgb

    return frame_rgb(DecodedFrame(0, None, source=source))


def _plane(frame: Any, index: int) -> NDArray[np.uint8]:
    """A writable view of one plane of an ``av.VideoFrame`` (without its row padding)."""
    import numpy as np

    plane = frame.planes[index]
    view: NDArray[np.uint8] = np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)
    return view[:, : plane.width]


def _plain_420(frame: Any, width: int, height: int) -> bool:
    return (
        frame is not None
        and frame.format.name in ("yuv420p", "yuvj420p")
        and (frame.width, frame.height) == (width, height)
    )


def _with_alpha(frame: Any, alpha: NDArray[np.uint8]) -> Any:
    """A ``yuva420p`` frame: ``frame``'s planes copied as they are, ``alpha`` as the fourth."""
    import av
    import numpy as np

    out = av.VideoFrame(frame.width, frame.height, "yuva420p")
    for index, plane in enumerate(out.planes):
        target = np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
        if index < 3:
            source = frame.planes[index]
            target[:] = np.frombuffer(memoryview(source), np.uint8).reshape(source.height, source.line_size)[
                :, : source.width
            ]
        else:
            target[:] = alpha
    out.colorspace = frame.colorspace
    out.color_range = frame.color_range
    return out


def open_writer(
    dest: str | Path,
    output: OutputSpec,
    *,
    width: int,
    height: int,
    fps: Fraction | float,
    audio_from: Path | None = None,
) -> FrameWriter:
    """A writer of ``output.format`` at ``dest`` (written under a temporary name until closed).

    ``audio_from`` is the file whose audio is carried over when the format can
    hold audio and ``output.keep_audio`` is true (PNG and zip outputs have none).
    Raises :class:`~vidmatte.errors.ConfigurationError` for a transparent MP4 and
    :class:`~vidmatte.errors.MediaError` for an unwritable destination.
    """
    path = Path(dest)
    check_output(output)  # before touching the disk
    _check_destination(path)
    rate = Fraction(fps).limit_denominator(1001) if not isinstance(fps, Fraction) else fps
    if output.format in (OutputFormat.PNG, OutputFormat.ZIP):
        return PngWriter(path, output, width=width, height=height)
    return VideoFileWriter(path, output, width=width, height=height, fps=rate, audio_from=audio_from)
