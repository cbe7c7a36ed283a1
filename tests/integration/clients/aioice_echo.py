#!/usr/bin/python3
"""Relays datagrams through a TURN server with python3-aioice's TURN client and checks that
an echo peer sends each one back byte-identical.

    aioice_echo.py --server HOST:PORT --username U --password P --peer-host 127.0.0.2
                   [--transport udp|tcp] [--sizes 1,160,1200] [--peer HOST:PORT]

The echo peer is a UDP socket this script opens on --peer-host, or with --peer an echo peer
already running there (e.g. turnutils_peer in another network namespace). aioice allocates, binds a
channel for the peer (ChannelBind) and sends ChannelData; the peer echoes each datagram to
the relayed address, and tern relays it back as ChannelData. Prints one JSON line with what
happened and exits 0 only if every datagram came back intact.
"""
import argparse
import asyncio
import json
import os
import ssl
import sys

import aioice.turn


class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)


class Collector(asyncio.DatagramProtocol):
    def __init__(self):
        self.received = asyncio.Queue()

    def connection_made(self, transport):
        pass

    def datagram_received(self, data, addr):
        self.received.put_nowait((data, addr))


async def run(args):
    loop = asyncio.get_running_loop()
    host, port = args.server.rsplit(":", 1)
    echo_transport = None
    if args.peer:
        peer_host, peer_port = args.peer.rsplit(":", 1)
        peer = (peer_host.strip("[]"), int(peer_port))
    else:
        echo_transport, _ = await loop.create_datagram_endpoint(Echo, local_addr=(args.peer_host, 0))
        peer = echo_transport.get_extra_info("sockname")[:2]
    tls = None
    if args.cafile:
        # TURN over TLS (RFC 8656 §3.1), verifying the server against the test CA.
        tls = ssl.create_default_context(cafile=args.cafile)
    turn, collector = await aioice.turn.create_turn_endpoint(
        Collector, server_addr=(host, int(port)), username=args.username,
        password=args.password, transport=args.transport, ssl=tls)
    relayed = turn.get_extra_info("sockname")
    sizes = [int(s) for s in args.sizes.split(",")]
    sent = {}
    for i, size in enumerate(sizes):
        # A distinct, random payload per datagram so a mix-up cannot pass.
        payload = bytes([i]) + os.urandom(size - 1) if size > 0 else b""
        sent[payload] = size
        turn.sendto(payload, peer)
    intact = 0
    wrong_source = 0
    try:
        for _ in sizes:
            data, addr = await asyncio.wait_for(collector.received.get(), timeout=5)
            if tuple(addr[:2]) != tuple(peer):
                wrong_source += 1
            if sent.pop(data, None) is not None:
                intact += 1
    except asyncio.TimeoutError:
        pass
    turn.close()
    if echo_transport:
        echo_transport.close()
    await asyncio.sleep(0.2)
    result = {"relayed": list(relayed), "peer": list(peer), "sent": len(sizes),
              "intact": intact, "missing": len(sent), "wrong_source": wrong_source}
    print(json.dumps(result))
    return 0 if intact == len(sizes) and wrong_source == 0 else 1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--server", required=True)
    p.add_argument("--username", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--peer-host", default="127.0.0.2")
    p.add_argument("--transport", default="udp", choices=["udp", "tcp"])
    p.add_argument("--peer", help="an echo peer already running (HOST:PORT) instead of our own")
    p.add_argument("--sizes", default="1,7,160,1000,1400,8000")
    p.add_argument("--cafile", help="use TLS (with --transport tcp), trusting this CA")
    args = p.parse_args()
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
