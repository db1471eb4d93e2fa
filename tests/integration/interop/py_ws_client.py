#!/usr/bin/python3
"""Interop client for 42-interop-slow: Debian's python3-websockets talking to Parley's /ws.

Usage: py_ws_client.py WS_URL TOKEN CHAT EXPECT_BODY SEND_BODY

Authenticates with the token, subscribes to CHAT, prints {"step": "ready"}, waits for a `msg`
event whose body is EXPECT_BODY (sent by the Node side), sends SEND_BODY with msg.send and prints
every step as one JSON line on stdout. Exits 0 on success, 1 on any failure (the reason printed
as {"step": "error"}). Every wait is bounded.
"""
import asyncio
import json
import sys

import websockets

TIMEOUT = 8


def out(**kw):
    print(json.dumps(kw), flush=True)


async def main(url, token, chat, expect_body, send_body):
    async with websockets.connect(url, open_timeout=TIMEOUT, max_size=1 << 20, compression=None) as ws:
        events = []

        async def reply(req_id):
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
                if frame.get("id") == req_id and "ev" not in frame:
                    return frame
                events.append(frame)

        async def event(pred):
            for e in events:
                if pred(e):
                    events.remove(e)
                    return e
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
                if "ev" in frame and pred(frame):
                    return frame
                events.append(frame)

        await ws.send(json.dumps({"id": 1, "op": "auth", "token": token}))
        r = await reply(1)
        out(step="auth", reply=r)
        if not r.get("ok"):
            raise RuntimeError("auth failed")
        hello = await event(lambda e: e.get("ev") == "hello")
        out(step="hello", event=hello)
        await ws.send(json.dumps({"id": 2, "op": "sub", "chat": chat}))
        r = await reply(2)
        out(step="sub", ok=r.get("ok"), lastSeq=r.get("lastSeq"))
        if not r.get("ok"):
            raise RuntimeError("sub failed")
        out(step="ready")
        m = await event(lambda e: e.get("ev") == "msg" and e.get("msg", {}).get("body") == expect_body)
        out(step="received", event=m)
        await ws.send(json.dumps({"id": 3, "op": "msg.send", "chat": chat, "body": send_body, "clientMsgId": "py-1"}))
        r = await reply(3)
        out(step="sent", reply=r)
        if not r.get("ok"):
            raise RuntimeError("msg.send failed")
        own = await event(lambda e: e.get("ev") == "msg" and e.get("msg", {}).get("body") == send_body)
        out(step="own", event=own)
        await ws.close()
        out(step="closed", code=ws.close_code, version=websockets.__version__)


if __name__ == "__main__":
    try:
        asyncio.run(main(*sys.argv[1:6]))
    except Exception as exc:  # noqa: BLE001 - reported to the test
        out(step="error", error=f"{type(exc).__name__}: {exc}")
        sys.exit(1)
