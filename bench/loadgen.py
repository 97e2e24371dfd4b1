"""A load generator run as a second process: C keep-alive connections issue GETs for T seconds.
Prints JSON {"requests", "rps", "p50_ms", "p99_ms", "errors"}."""

from __future__ import annotations

import asyncio
import json
import sys
import time


async def worker(port: int, path: str, until: float, lat: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n".encode()
    while time.perf_counter() < until:
        t0 = time.perf_counter()
        writer.write(req)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        if not head.startswith(b"HTTP/1.1 200"):
            errors.append(1)
        lat.append(time.perf_counter() - t0)
    writer.close()


async def main(port: int, path: str, seconds: float, conns: int) -> None:
    lat: list[float] = []
    errors: list[int] = []
    until = time.perf_counter() + seconds
    t0 = time.perf_counter()
    await asyncio.gather(*(worker(port, path, until, lat, errors) for _ in range(conns)))
    dt = time.perf_counter() - t0
    lat.sort()
    print(json.dumps({
        "requests": len(lat), "rps": len(lat) / dt, "errors": len(errors),
        "p50_ms": lat[len(lat) // 2] * 1000 if lat else None,
        "p99_ms": lat[int(len(lat) * 0.99) - 1] * 1000 if lat else None,
    }))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), int(sys.argv[4])))
