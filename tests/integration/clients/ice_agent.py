#!/usr/bin/python3
"""One ICE agent (RFC 8445) made with python3-aioice, for tests that put two of them in
different network namespaces and let them find a path to each other.

    ice_agent.py --name a --peer-name b --exchange-dir DIR (--controlling | --controlled)
                 [--stun HOST:PORT] [--turn HOST:PORT --username U --password P
                  [--turn-transport udp|tcp] [--cafile CA]] [--messages N] [--timeout S]

Signalling is two files: the agent gathers its candidates, writes its ICE credentials and
candidates to DIR/<name>.json and waits for DIR/<peer-name>.json. Then it runs its
connectivity checks. Once connected, the controlling agent sends N numbered pings with
random bytes, and the controlled agent echoes each one back with a prefix. So data crosses
the selected pair both ways. With --cafile, the TURN connection uses TLS and checks the
server's certificate against that CA.

The last line printed is `RESULT key=value ...`: connected=0|1, the selected pair's local and
remote candidate (type and address), and how many pings were echoed back intact. The exit
status is 0 when the agent connected and exchanged every message, and 2 when ICE failed.
"""
import argparse
import asyncio
import json
import logging
import os
import ssl
import sys
import time

import aioice
import aioice.stun

# aioice retransmits a check 6 times, with the timeout doubling from 0.5 s, so a pair that
# cannot work fails only after 63.5 s. With 3 retransmissions it fails after 7.5 s, and the
# test still sees every pair tried.
aioice.stun.RETRY_MAX = 3


def result(**fields):
    print("RESULT " + " ".join(f"{k}={v}" for k, v in fields.items()), flush=True)


async def exchange_candidates(conn, args):
    mine = {
        "ufrag": conn.local_username,
        "pwd": conn.local_password,
        "candidates": [c.to_sdp() for c in conn.local_candidates],
    }
    path = os.path.join(args.exchange_dir, args.name + ".json")
    # Written under another name and renamed, so the peer never reads half a file.
    with open(path + ".tmp", "w") as f:
        json.dump(mine, f)
    os.replace(path + ".tmp", path)
    theirs_path = os.path.join(args.exchange_dir, args.peer_name + ".json")
    give_up = time.monotonic() + args.timeout
    while not os.path.exists(theirs_path):
        if time.monotonic() > give_up:
            raise TimeoutError("no candidates from " + args.peer_name)
        await asyncio.sleep(0.05)
    with open(theirs_path) as f:
        theirs = json.load(f)
    conn.remote_username = theirs["ufrag"]
    conn.remote_password = theirs["pwd"]
    for sdp in theirs["candidates"]:
        await conn.add_remote_candidate(aioice.Candidate.from_sdp(sdp))
    await conn.add_remote_candidate(None)  # end of candidates
    return mine["candidates"], theirs["candidates"]


async def ping(conn, count, timeout):
    """Sends `count` pings and waits for their echoes, sending again what is unanswered."""
    pings = {i: b"ping %d " % i + os.urandom(100 + i) for i in range(count)}
    echoed = 0
    give_up = time.monotonic() + timeout
    while pings and time.monotonic() < give_up:
        for data in pings.values():
            await conn.send(data)
        resend_at = time.monotonic() + 0.3
        while pings and time.monotonic() < resend_at:
            try:
                data = await asyncio.wait_for(conn.recv(), resend_at - time.monotonic())
            except asyncio.TimeoutError:
                break
            if not data.startswith(b"echo "):
                continue
            original = data[len(b"echo "):]
            for i, sent in list(pings.items()):
                if sent == original:
                    del pings[i]
                    echoed += 1
    await conn.send(b"bye")
    return echoed


async def echo(conn, timeout):
    """Echoes every ping until the controlling agent says bye; how many distinct pings came."""
    seen = set()
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        try:
            data = await asyncio.wait_for(conn.recv(), give_up - time.monotonic())
        except asyncio.TimeoutError:
            break
        if data == b"bye":
            break
        if data.startswith(b"ping "):
            seen.add(data)
            await conn.send(b"echo " + data)
    return len(seen)


def report_background_failure(loop, context):
    # aioice sends through TURN from tasks of their own: when tern refuses a ChannelBind (403
    # for a peer on a private address, i.e. a host candidate behind a NAT), the task ends with
    # an exception nobody awaits, and that pair's check just times out. One line says so.
    exception = context.get("exception")
    print("background task failed:", repr(exception) if exception else context["message"], flush=True)


async def run(args):
    asyncio.get_running_loop().set_exception_handler(report_background_failure)
    stun = None
    if args.stun:
        host, port = args.stun.rsplit(":", 1)
        stun = (host, int(port))
    turn = None
    if args.turn:
        host, port = args.turn.rsplit(":", 1)
        turn = (host, int(port))
    tls = ssl.create_default_context(cafile=args.cafile) if args.cafile else False
    conn = aioice.Connection(
        ice_controlling=args.controlling, components=1, stun_server=stun, turn_server=turn,
        turn_username=args.username, turn_password=args.password, turn_ssl=tls,
        turn_transport=args.turn_transport, use_ipv6=False)
    await conn.gather_candidates()
    local, remote = await exchange_candidates(conn, args)
    print("local candidates:", local, flush=True)
    print("remote candidates:", remote, flush=True)
    started = time.monotonic()
    try:
        await asyncio.wait_for(conn.connect(), args.timeout)
    except (ConnectionError, asyncio.TimeoutError) as e:
        result(connected=0, error=type(e).__name__, seconds=round(time.monotonic() - started, 1),
               local_types=",".join(sorted({c.split()[7] for c in local})))
        await conn.close()
        return 2
    # aioice has no public accessor for the selected pair; _nominated holds it per component.
    pair = conn._nominated[1]
    lc, rc = pair.local_candidate, pair.remote_candidate
    if args.controlling:
        exchanged = await ping(conn, args.messages, args.timeout)
    else:
        exchanged = await echo(conn, args.timeout)
    result(connected=1, seconds=round(time.monotonic() - started, 1),
           local_type=lc.type, local=f"{lc.host}:{lc.port}",
           remote_type=rc.type, remote=f"{rc.host}:{rc.port}",
           messages=args.messages, exchanged=exchanged)
    # Give the last echo and the bye time to leave before the TURN allocation goes.
    await asyncio.sleep(0.5)
    await conn.close()
    return 0 if exchanged == args.messages else 1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--name", required=True)
    p.add_argument("--peer-name", required=True)
    p.add_argument("--exchange-dir", required=True)
    role = p.add_mutually_exclusive_group(required=True)
    role.add_argument("--controlling", action="store_true")
    role.add_argument("--controlled", action="store_true")
    p.add_argument("--stun")
    p.add_argument("--turn")
    p.add_argument("--username")
    p.add_argument("--password")
    p.add_argument("--turn-transport", default="udp", choices=["udp", "tcp"])
    p.add_argument("--cafile", help="TURN over TLS (with --turn-transport tcp), trusting this CA")
    p.add_argument("--messages", type=int, default=10)
    p.add_argument("--timeout", type=float, default=20)
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(message)s")
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
