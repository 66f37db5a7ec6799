"""Carrying the source's audio into an output, interleaved with the video as it is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vidmatte.media._errors import media_error

__all__ = ["AudioCarrier"]

# Containers whose AAC packets can be copied into MP4/MOV as they are (no ADTS headers).
_MP4_FAMILY = ("mov", "mp4", "m4a", "3gp", "matroska", "webm")


class AudioCarrier:
    """Copies or transcodes the first audio stream of ``source`` into ``output``.

    ``codec`` is what the output container takes (``libopus`` for WebM, ``aac``
    for MOV/MP4).  A source already in that codec is copied packet for packet;
    anything else is decoded and re-encoded.  :meth:`feed_until` writes audio up
    to a time so the file stays interleaved and nothing accumulates in memory.
    """

    def __init__(self, source: Path, output: Any, codec: str, *, trim: tuple[float, float] | None = None) -> None:
        import av

        self.source = source
        try:
            self._input: Any = av.open(str(source))
        except (av.FFmpegError, OSError) as exc:
            raise media_error(source, "audio cannot be read", exc) from None
        self._in_stream = self._input.streams.audio[0]
        self._trim = trim
        self._offset = trim[0] if trim else 0.0
        in_codec = self._in_stream.codec_context.name
        family = self._input.format.name.split(",")
        copy_name = "opus" if codec == "libopus" else codec
        self.copy = in_codec == copy_name and any(f in _MP4_FAMILY for f in family) and trim is None
        self._resampler: Any = None
        if self.copy:
            self._out_stream = output.add_stream_from_template(self._in_stream)
        else:
            layout = self._in_stream.layout.name if self._in_stream.channels <= 2 else "stereo"
            rate = 48000 if codec == "libopus" else (self._in_stream.rate or 48000)
            self._out_stream = output.add_stream(codec, rate=rate, layout=layout)
            fmt = "flt" if codec == "libopus" else "fltp"
            self._out_stream.codec_context.format = fmt
            self._resampler = av.AudioResampler(format=fmt, layout=layout, rate=rate)
            if codec == "aac":
                self._out_stream.codec_context.bit_rate = 160_000
        self._output = output
        self._packets = self._input.demux(self._in_stream)
        self._written_until = -1.0
        self._finished = False

    def _mux(self, packets: Any) -> None:
        for packet in packets:
            self._output.mux(packet)

    def _handle(self, packet: Any) -> None:
        import av

        if self.copy:
            if packet.dts is None:
                return
            packet.stream = self._out_stream
            self._output.mux(packet)
            return
        try:
            frames = packet.decode()
        except av.FFmpegError:
            return  # a damaged audio packet costs a click, not the job
        for frame in frames:
            if self._trim is not None and frame.time is not None:
                if frame.time < self._trim[0] or frame.time >= self._trim[1]:
                    continue
                frame.pts = None
            for resampled in self._resampler.resample(frame):
                resampled.pts = None
                self._mux(self._out_stream.encode(resampled))

    def feed_until(self, seconds: float) -> None:
        """Write the source's audio up to ``seconds`` of output time."""
        if self._finished or seconds <= self._written_until:
            return
        for packet in self._packets:
            self._handle(packet)
            pts, base = packet.pts, packet.time_base
            if pts is not None and base is not None and float(pts * base) - self._offset >= seconds:
                break
        else:
            self._finish_input()
        self._written_until = seconds

    def _finish_input(self) -> None:
        if self._finished:
            return
        self._finished = True
        if not self.copy:
            for resampled in self._resampler.resample(None):
                resampled.pts = None
                self._mux(self._out_stream.encode(resampled))
            self._mux(self._out_stream.encode(None))
        self._input.close()

    def finish(self, seconds: float | None = None) -> None:
        """Write what is left (up to ``seconds`` when given) and close the source."""
        if seconds is not None:
            self.feed_until(seconds)
        for packet in self._packets if seconds is None else ():
            self._handle(packet)
        self._finish_input()

    def abort(self) -> None:
        """Close the source without writing more."""
        if not self._finished:
            self._finished = True
            self._input.close()
