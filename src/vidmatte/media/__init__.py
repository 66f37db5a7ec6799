"""Media: probing, streaming decode, and encoders for every output format (PyAV).

* :func:`probe` learns what a video is (one-line :class:`~vidmatte.errors.MediaError` when it is not one);
* :class:`VideoReader` decodes frame by frame (memory never grows with clip length);
* :func:`open_writer` encodes WebM VP9 with alpha, ProRes 4444 MOV, PNG folders and zips,
  H.264 MP4 on a colour or an image, and matte videos, with the source's audio, written
  under a temporary name and renamed when complete;
* :func:`convert` re-encodes a finished result into another format;
* :func:`read_frames_rgba` reads any of those outputs back (WebM alpha included);
* :func:`make_sample_clip` makes the demo clip locally.
"""

from vidmatte.media._composite import Compositor, check_output, resolve_output, wants_alpha
from vidmatte.media._convert import convert
from vidmatte.media._decode import DecodedFrame, VideoReader, frame_rgb, read_frames_rgba
from vidmatte.media._encode import FrameWriter, open_writer, temporary_sibling
from vidmatte.media._probe import probe
from vidmatte.media._sample import make_sample_clip, sample_person_box

__all__ = [
    "Compositor",
    "DecodedFrame",
    "FrameWriter",
    "VideoReader",
    "check_output",
    "convert",
    "frame_rgb",
    "make_sample_clip",
    "open_writer",
    "probe",
    "read_frames_rgba",
    "resolve_output",
    "sample_person_box",
    "temporary_sibling",
    "wants_alpha",
]
