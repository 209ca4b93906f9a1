#!/usr/bin/env python3
"""Small TCP tools for Benchmarks/run.sh, where wrk and iperf3 do not fit.

  clients.py echo-server PORT          accept and hold connections, echoing what they send
  clients.py hold PORT COUNT           open COUNT connections, check each carries a byte both
                                       ways, print "ready COUNT", then hold them until killed
  clients.py short PORT COUNT PARALLEL make exactly COUNT HTTP/1.1 "Connection: close"
                                       requests, PARALLEL at a time; prints how many succeeded
  clients.py rate PORT SECONDS PARALLEL HELD
                                       for SECONDS, PARALLEL loops each connect, echo a byte
                                       and close, while HELD connections opened first echo a
                                       byte every 100 ms; prints JSON: successes per 100 ms,
                                       failures and their reasons, held connections that
                                       lasted (against an echo server)

All on 127.0.0.1. The byte echoed by "hold" proves each connection reaches the backend
through the proxy, not only the proxy's listen backlog.
"""
import asyncio
import selectors
import signal
import socket
import sys
import threading

HOST = "127.0.0.1"


def echo_server(port):
    async def echo(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def main():
        server = await asyncio.start_server(echo, HOST, port, backlog=4096)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def hold(port, count, window=200):
    """Opens `count` connections, at most `window` of them still connecting or waiting for
    their echo at a time (the proxy's listen backlog stays short)."""
    selector = selectors.DefaultSelector()
    held = []
    opened = in_flight = 0
    while len(held) < count:
        while opened < count and in_flight < window:
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex((HOST, port))  # EINPROGRESS, or 0 at once on loopback
            selector.register(s, selectors.EVENT_WRITE, "connecting")
            opened += 1
            in_flight += 1
        events = selector.select(timeout=10)
        if not events:
            sys.exit(f"hold: stuck at {len(held)} of {count} connections")
        for key, _ in events:
            s = key.fileobj
            if key.data == "connecting":
                error = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if error:
                    sys.exit(f"hold: connect failed after {len(held)} connections: {error}")
                s.send(b"x")
                selector.modify(s, selectors.EVENT_READ, "echo")
            else:
                if s.recv(1) != b"x":
                    sys.exit(f"hold: connection closed after {len(held)} connections")
                selector.unregister(s)
                held.append(s)
                in_flight -= 1
    print(f"ready {len(held)}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        signal.pause()


def short(port, count, parallel):
    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    lock = threading.Lock()
    remaining = [count]
    succeeded = [0]

    def worker():
        while True:
            with lock:
                if remaining[0] == 0:
                    return
                remaining[0] -= 1
            try:
                with socket.create_connection((HOST, port), timeout=10) as s:
                    s.sendall(request)
                    response = b""
                    while chunk := s.recv(65536):
                        response += chunk
                ok = response.startswith(b"HTTP/1.1 200")
            except OSError:
                ok = False
            if ok:
                with lock:
                    succeeded[0] += 1

    threads = [threading.Thread(target=worker) for _ in range(parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(succeeded[0])


def rate(port, seconds, parallel, held_count):
    import json
    import time
    lock = threading.Lock()
    start = time.monotonic()
    end = start + seconds
    buckets = [0] * (int(seconds * 10) + 1)
    failures = {}

    def fail(reason):
        with lock:
            failures[reason] = failures.get(reason, 0) + 1

    def worker():
        while time.monotonic() < end:
            try:
                with socket.create_connection((HOST, port), timeout=10) as s:
                    s.sendall(b"x")
                    if s.recv(1) != b"x":
                        raise ConnectionError("no echo")
                with lock:
                    buckets[int((time.monotonic() - start) * 10)] += 1
            except OSError as error:
                fail(type(error).__name__ + (f" {error.errno}" if error.errno else ""))

    held = [socket.create_connection((HOST, port), timeout=10) for _ in range(held_count)]
    lasted = [True] * held_count

    def pinger():
        while time.monotonic() < end:
            for index, s in enumerate(held):
                if not lasted[index]:
                    continue
                try:
                    s.sendall(b"h")
                    if s.recv(1) != b"h":
                        raise ConnectionError("no echo")
                except OSError:
                    lasted[index] = False
            time.sleep(0.1)

    threads = [threading.Thread(target=worker) for _ in range(parallel)] + [threading.Thread(target=pinger)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in held:
        s.close()
    print(json.dumps({"buckets": buckets[: int(seconds * 10)], "failures": failures, "held": held_count, "lasted": sum(lasted)}))


if __name__ == "__main__":
    command, args = sys.argv[1], [int(a) for a in sys.argv[2:]]
    {"echo-server": echo_server, "hold": hold, "short": short, "rate": rate}[command](*args)
