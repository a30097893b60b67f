"""A plain WebSocket client of Tether's /ws endpoint (websocket-client): auth frame, renewal, recovery.

Run:  TETHER_URL=http://127.0.0.1:3000 TETHER_EMAIL=admin@helpdesk.demo TETHER_PASSWORD=admin-demo \
      python3 ws_client.py
Needs Debian's python3-websocket and python3-requests. Prints one JSON line per thing that happens.
"""
import json
import os
import sys
import threading
import time

import requests
import websocket

BASE = os.environ.get("TETHER_URL", "http://127.0.0.1:3000")
WS_URL = BASE.replace("http", "ws", 1) + "/ws"


_print_lock = threading.Lock()


def say(**fields):
    # One whole line per call: handlers run on several threads, and print() writes the text and
    # its newline separately, so two unguarded calls could interleave into one line.
    line = json.dumps(fields) + "\n"
    with _print_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


login = requests.post(
    f"{BASE}/auth/login",
    json={"email": os.environ["TETHER_EMAIL"], "password": os.environ["TETHER_PASSWORD"]},
    timeout=10,
).json()
state = {"access": login["access_token"], "refresh": login["refresh_token"], "position": None}


def on_open(ws):
    # The token goes in the first frame (never in the URL, which proxies log), with the last position.
    frame = {"type": "authenticate", "token": state["access"]}
    if state["position"]:
        frame["position"] = state["position"]
    ws.send(json.dumps(frame))


def on_message(ws, text):
    frame = json.loads(text)
    kind = frame.get("type")
    # Heartbeats are WebSocket pings, which websocket-client answers by itself.
    if kind == "session_created":
        state["position"] = frame.get("position") or state["position"]
        say(session=frame["sessionId"], user=frame["userId"], recovered=frame.get("recovered"))
    elif kind == "event":
        state["position"] = frame.get("position") or state["position"]
        say(event=frame["event"], data=frame["data"], id=frame["id"])
    elif kind == "token_expiring":
        fresh = requests.post(f"{BASE}/auth/refresh-mobile", json={"refresh_token": state["refresh"]}, timeout=10)
        if fresh.status_code != 200:
            say(refresh_failed=fresh.json().get("code"))
            return
        body = fresh.json()
        state.update(access=body["access_token"], refresh=body["refresh_token"])
        ws.send(json.dumps({"type": "reauth", "token": state["access"]}))
    elif kind == "reauth_ok":
        say(reauth=True)
    elif kind == "reauth_error":
        say(reauth=False, code=frame.get("code"))
    elif kind == "auth_error":
        say(auth_error=frame["code"])
    elif kind == "server_shutdown":
        say(server_shutdown=frame["reconnectInMs"])


def on_close(ws, code, reason):
    say(disconnected=True, code=code)


while True:
    app = websocket.WebSocketApp(WS_URL, on_open=on_open, on_message=on_message, on_close=on_close)
    app.run_forever()
    time.sleep(0.5)  # then reconnect, presenting the last position
