"""A canned-response HTTP/1.1 server on loopback (run as a separate, pinned process).

Every request gets the same small AIgateway job record (a running job), with
keep-alive and the gateway's rate-limit headers, so the client, not the
server, is what a request-path benchmark measures.

    python benchmarks/_canned_server.py PORT
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys

BODY = json.dumps(
    {
        "id": "job_0123456789abcdef0123",
        "object": "job",
        "model": "prama-labs/ben-v2-video",
        "status": "processing",
        "created_at": 1795000000,
    }
).encode()

RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: " + str(len(BODY)).encode() + b"\r\n"
    b"x-ratelimit-limit-requests: 100000000\r\n"
    b"x-ratelimit-remaining-requests: 99999999\r\n"
    b"x-ratelimit-reset-requests: 1\r\n"
    b"Connection: keep-alive\r\n"
    b"\r\n" + BODY
)


class _Canned(asyncio.Protocol):
    def __init__(self) -> None:
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        answers = []
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = self._buffer[:end].lower()
            length = 0
            marker = head.find(b"content-length:")
            if marker >= 0:
                length = int(head[marker + 15 :].split(b"\r\n", 1)[0])
            if len(self._buffer) < end + 4 + length:
                break
            self._buffer = self._buffer[end + 4 + length :]
            answers.append(RESPONSE)
        if answers and self._transport is not None:
            self._transport.write(b"".join(answers))


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Canned, "127.0.0.1", port, backlog=1024)
    print(f"canned server listening on 127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(int(sys.argv[1])))
