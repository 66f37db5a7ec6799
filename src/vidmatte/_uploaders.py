"""The built-in ``http`` uploader: POST a file to an endpoint that answers with its URL."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

import attrs
import httpx

from vidmatte._config import UPLOAD_URL_ENV, structure_settings
from vidmatte.contract import BackendContext, Uploader, UploaderSpec
from vidmatte.errors import ConfigurationError, MediaError, ProtocolError
from vidmatte.hookspecs import hookimpl
from vidmatte.http import RetryPolicy, check_base_url, create_client, read_json, send

__all__ = ["HttpUploader", "HttpUploaderSettings"]


@attrs.frozen
class HttpUploaderSettings:
    """``[uploaders.http]``: where to POST and how."""

    url: str = ""
    """Endpoint taking a multipart ``file`` field and answering JSON with ``url``."""
    field: str = "file"
    token: str | None = attrs.field(default=None, repr=False)
    """Bearer token sent with the upload, if the endpoint wants one."""


class HttpUploader:
    """Uploads with one multipart POST; the JSON answer's ``url`` is what providers fetch."""

    def __init__(self, settings: HttpUploaderSettings, context: BackendContext) -> None:
        if not settings.url:
            raise ConfigurationError(
                f"the http uploader needs an endpoint: set {UPLOAD_URL_ENV} or [uploaders.http] url"
            )
        self._url = check_base_url(settings.url, setting="uploaders.http.url")
        self._settings = settings
        self._context = context

    def __repr__(self) -> str:
        return f"HttpUploader(url={self._url!r})"

    async def upload(self, path: Path, *, content_type: str = "") -> str:
        """POST ``path`` and return the URL the endpoint answers with."""
        content_type = content_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise MediaError(f"cannot read {str(path)!r} for upload: {exc.strerror}") from None
        headers = {"Authorization": f"Bearer {self._settings.token}"} if self._settings.token else {}

        def build() -> httpx.Request:
            return client.build_request(
                "POST", self._url, files={self._settings.field: (path.name, data, content_type)}, headers=headers
            )

        async with create_client(transport=self._context.transport, timeout=600.0) as client:
            response = await send(
                client, build, backend="uploader:http", policy=RetryPolicy(attempts=3), secrets=(self._settings.token,)
            )
        body = read_json(response, backend="uploader:http")
        url = body.get("url") if isinstance(body, dict) else None
        if not isinstance(url, str) or not url:
            raise ProtocolError("the upload endpoint answered without a 'url'", backend="uploader:http")
        return url


def _make_http_uploader(context: BackendContext) -> Uploader:
    data: dict[str, Any] = dict(context.settings)
    if not data.get("url") and context.env.get(UPLOAD_URL_ENV):
        data["url"] = context.env[UPLOAD_URL_ENV]
    return HttpUploader(structure_settings(HttpUploaderSettings, data, where="uploaders.http"), context)


@hookimpl
def vidmatte_register_uploaders() -> list[UploaderSpec]:
    """The core's own uploaders, registered like any plugin's."""
    return [
        UploaderSpec(
            name="http",
            factory=_make_http_uploader,
            summary=f"multipart POST to an endpoint answering {{'url': ...}} ({UPLOAD_URL_ENV})",
        )
    ]
