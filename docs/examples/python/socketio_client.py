"""A python-socketio client of Tether: one-argument handlers, token renewal in place, recovery.

Run:  TETHER_URL=http://127.0.0.1:3000 TETHER_EMAIL=admin@helpdesk.demo TETHER_PASSWORD=admin-demo \
      python3 socketio_client.py
Needs Debian's python3-socketio, python3-websocket and python3-requests (or pip's python-socketio,
websocket-client and requests). Prints one JSON line per thing that happens.
"""
import json
import os
import sys
import threading

import requests
import socketio

BASE = os.environ.get("TETHER_URL", "http://127.0.0.1:3000")
EVENTS = os.environ.get("TETHER_EVENTS", "order").split(",")
# With meta, each event also brings {id, position}: what recovery after a reconnect needs.
META = os.environ.get("TETHER_META", "1") != "0"


_print_lock = threading.Lock()


def say(**fields):
    # One whole line per call: handlers run on several threads, and print() writes the text and
    # its newline separately, so two unguarded calls could interleave into one line.
    line = json.dumps(fields) + "\n"
    with _print_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


# Sign in with Tether's token service (an app with its own backend gets its tokens there instead).
login = requests.post(
    f"{BASE}/auth/login",
    json={"email": os.environ["TETHER_EMAIL"], "password": os.environ["TETHER_PASSWORD"]},
    timeout=10,
).json()
state = {"access": login["access_token"], "refresh": login["refresh_token"], "position": None}

sio = socketio.Client(reconnection=True, reconnection_delay=0.5, reconnection_delay_max=2)

# python-engineio hands each incoming message to a new thread, so two events that arrive together
# (a replay after a reconnect) can reach the handlers out of order. Tether delivers in order; keep
# it by dispatching messages on the reading thread, as they arrive: handlers must not wait for the
# socket (emit with a callback, never call()); the token refresh's HTTP request only delays the next event.
_trigger_event = sio.eio._trigger_event


def _in_arrival_order(event, *args, **kwargs):
    kwargs.pop("run_async", None)
    return _trigger_event(event, *args, **kwargs)


sio.eio._trigger_event = _in_arrival_order


def handshake():
    # Read at every (re)connect: the current token, and the position of the last event received,
    # so the gateway replays what was missed. `meta: True` asks for each event's {id, position}.
    auth = {"token": state["access"], "meta": META}
    if state["position"]:
        auth["position"] = state["position"]
    return auth


@sio.on("session_created")
def on_session(info):
    state["position"] = info.get("position") or state["position"]
    say(session=info["sessionId"], user=info["userId"], recovered=info.get("recovered"))


def on_event(name):
    if not META:
        # The usual handler: one argument, the data exactly as the backend published it.
        def plain(data):
            say(event=name, data=data)

        return plain

    def with_meta(data, meta):
        state["position"] = meta.get("position") or state["position"]
        say(event=name, data=data, id=meta.get("id"))

    return with_meta


for name in EVENTS:
    sio.on(name, on_event(name))


@sio.on("token_expiring")
def on_token_expiring(info):
    # Rotate the refresh token, then hand the new access token to the live connection: no reconnect.
    fresh = requests.post(f"{BASE}/auth/refresh-mobile", json={"refresh_token": state["refresh"]}, timeout=10)
    if fresh.status_code != 200:
        say(refresh_failed=fresh.json().get("code"))
        return
    body = fresh.json()
    state.update(access=body["access_token"], refresh=body["refresh_token"])
    # emit with a callback, never call(): a handler must not block waiting for an answer.
    sio.emit("reauth", {"token": state["access"]}, callback=lambda ack: say(reauth=ack.get("ok"), code=ack.get("code")))


@sio.on("auth_error")
def on_auth_error(err):
    say(auth_error=err["code"])


@sio.on("server_shutdown")
def on_server_shutdown(info):
    say(server_shutdown=info["reconnectInMs"])


@sio.event
def disconnect():
    say(disconnected=True)


sio.connect(BASE, auth=handshake, transports=["websocket"])
sio.wait()
