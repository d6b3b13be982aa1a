#!/usr/bin/python3
"""A TCP relay whose connections can be cut: for the XEP-0198 resume test.

  tcpcut.py LISTEN_PORT TARGET_PORT      (both on 127.0.0.1)

Relays every accepted connection to 127.0.0.1:TARGET_PORT. On SIGUSR1 it resets every
current connection (both sides) but keeps listening, so a client that reconnects gets
through again. Prints "listening" once ready and "cut N" after each cut.
"""
import asyncio
import signal
import sys

LISTEN, TARGET = int(sys.argv[1]), int(sys.argv[2])
conns = set()


async def pipe(r, w):
    try:
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        w.close()


async def handle(cr, cw):
    try:
        sr, sw = await asyncio.open_connection("127.0.0.1", TARGET)
    except OSError:
        cw.close()
        return
    tasks = [asyncio.create_task(pipe(cr, sw)), asyncio.create_task(pipe(sr, cw))]
    entry = (cw, sw, tuple(tasks))
    conns.add(entry)
    await asyncio.gather(*tasks, return_exceptions=True)
    conns.discard(entry)


def cut():
    n = 0
    for cw, sw, tasks in list(conns):
        for w in (cw, sw):
            sock = w.get_extra_info("socket")
            if sock is not None:
                # RST instead of FIN: the client sees the connection die, not a clean close.
                import socket, struct
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            w.close()
        for t in tasks:
            t.cancel()
        n += 1
    conns.clear()
    print(f"cut {n}", flush=True)


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", LISTEN)
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, cut)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
