"""A local port where nothing answers, held for as long as a test needs it.

A port that is bound and then closed can be taken at once by another test's server (pytest-xdist
runs two at a time, and the test servers bind port 0 too): the "unreachable" endpoint then answers.
A socket bound but never listening refuses every connection and keeps the port for itself.

    with dead_port() as port:
        url = f"http://127.0.0.1:{port}/v1"
"""

from __future__ import annotations

import socket
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def dead_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


if __name__ == "__main__":
    with dead_port() as p:
        try:
            socket.create_connection(("127.0.0.1", p), timeout=2)
        except ConnectionRefusedError:
            print("refused", p)
