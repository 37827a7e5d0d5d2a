"""A TCP relay in front of PostgreSQL, for benchmarks: one more network hop, like RDS Proxy's.

    python -m bench.relay --to-socket /path/.s.PGSQL.5432 [--delay-ms 0.5]

Listens on 127.0.0.1 (a free port, printed on the first line of stdout) and copies bytes both
ways between each client and the server's Unix socket. `--delay-ms` holds every chunk that
long in each direction before passing it on, in order (asyncio's timers: on Linux they wake on
whole milliseconds, so any delay under 1 ms becomes about 1 ms). A benchmark reports the round
trip it actually got (`SELECT 1` through the relay), not the delay it asked for.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            if not data:
                break
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(deliver()) if delay_s > 0 else None
    try:
        while data := await reader.read(65536):
            if sender is None:
                writer.write(data)
                await writer.drain()
            else:
                queue.put_nowait((loop.time() + delay_s, data))
    finally:
        if sender is not None:
            queue.put_nowait((0.0, b""))
            with contextlib.suppress(Exception):
                await sender
        with contextlib.suppress(Exception):
            writer.close()


async def _serve(socket_path: str, delay_s: float) -> None:
    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_unix_connection(socket_path)
        await asyncio.gather(
            _pipe(reader, up_writer, delay_s),
            _pipe(up_reader, writer, delay_s),
            return_exceptions=True,
        )

    server = await asyncio.start_server(client, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--to-socket", required=True, help="the server's Unix socket file")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.to_socket, args.delay_ms / 1000))
    return 0


if __name__ == "__main__":
    sys.exit(main())
