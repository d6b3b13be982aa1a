#!/usr/bin/python3
"""A libnice ICE peer speaking the `natter ice connect` line contract, for interop tests.

    nice_peer.py --role controlling|controlled [--bind IP] [--stun IP:PORT]
                 [--turn IP:PORT --user U:P [--relay-only]] [--regular] [--timeout S]

stdout: a=ice-ufrag, a=ice-pwd, one a=candidate per local candidate, a=end-of-candidates, then
`connected LTYPE LADDR RTYPE RADDR` (or `failed`), then every line received from the peer.
stdin: the peer's a= lines up to a=end-of-candidates, then lines to send, until EOF.
stderr: `nice: connected N ms after the remote description`.

Needs Debian's python3-gi and gir1.2-nice-0.1; run it with /usr/bin/python3.

Two libnice/GI facts shape this script: the typelib lacks nice_agent_attach_recv, and
libnice only reads its sockets once a receive callback is attached, so receiving (and
sending raw bytes) goes through ctypes on libnice.so.10; and Nice.Candidate's fields do not
read correctly through GI, so candidates are only handled as SDP text.
"""
import argparse
import ctypes
import sys
import time

import gi

gi.require_version("Nice", "0.1")
from gi.repository import GLib, Nice  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--role", choices=["controlling", "controlled"], required=True)
ap.add_argument("--bind", default="127.0.0.1")
ap.add_argument("--stun", default=None)
ap.add_argument("--turn", default=None)
ap.add_argument("--user", default=None)
ap.add_argument("--regular", action="store_true", help="regular nomination (default aggressive)")
ap.add_argument("--relay-only", action="store_true", help="only the relayed candidate (force-relay)")
ap.add_argument("--timeout", type=float, default=30.0)
ap.add_argument("--linger-ms", type=int, default=300)
A = ap.parse_args()


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


nice = ctypes.CDLL("libnice.so.10")
glib = ctypes.CDLL("libglib-2.0.so.0")
glib.g_main_context_default.restype = ctypes.c_void_p
RECV = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint, ctypes.c_uint,
                        ctypes.POINTER(ctypes.c_char), ctypes.c_void_p)
nice.nice_agent_attach_recv.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint,
                                        ctypes.c_void_p, RECV, ctypes.c_void_p]
nice.nice_agent_send.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint, ctypes.c_uint,
                                 ctypes.c_char_p]
nice.nice_agent_send.restype = ctypes.c_int
ctypes.pythonapi.PyCapsule_GetPointer.restype = ctypes.c_void_p
ctypes.pythonapi.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]

flags = Nice.AgentOption(0)
if A.regular:
    flags |= Nice.AgentOption.REGULAR_NOMINATION
ctx = GLib.MainContext.default()
loop = GLib.MainLoop.new(ctx, False)
agent = Nice.Agent.new_full(ctx, Nice.Compatibility.RFC5245, flags)
PTR = ctypes.pythonapi.PyCapsule_GetPointer(agent.__gpointer__, None)
agent.set_property("controlling-mode", A.role == "controlling")
agent.set_property("upnp", False)
agent.set_property("ice-tcp", False)
agent.set_property("force-relay", A.relay_only)
if A.stun:
    h, p = A.stun.rsplit(":", 1)
    agent.set_property("stun-server", h)
    agent.set_property("stun-server-port", int(p))
addr = Nice.Address.new()
addr.set_from_string(A.bind)
agent.add_local_address(addr)
stream = agent.add_stream(1)
if A.turn:
    h, p = A.turn.rsplit(":", 1)
    u, pw = (A.user or ":").split(":", 1)
    agent.set_relay_info(stream, 1, h, int(p), u, pw, Nice.RelayType.UDP)

S = {"remote_ufrag": None, "remote_pwd": None, "cands": [], "eoc": False, "gathered": False,
     "applied": False, "applied_at": None, "selected": None, "connected": False, "rc": None,
     "queue": [], "rx": []}


def finish(rc):
    if S["rc"] is None:
        S["rc"] = rc
        GLib.timeout_add(A.linger_ms if rc == 0 else 10, loop.quit)


def fmt(c):
    f = agent.generate_local_candidate_sdp(c).split()
    return "%s %s:%s" % (f[7], f[4], f[5])


def maybe_connected():
    if S["connected"] or S["selected"] is None:
        return
    if agent.get_component_state(stream, 1) not in (Nice.ComponentState.CONNECTED,
                                                    Nice.ComponentState.READY):
        return
    S["connected"] = True
    (lt, la), (rt, ra) = (s.split() for s in S["selected"])
    out("connected %s %s %s %s" % (lt, la, rt, ra))
    if S["applied_at"] is not None:
        sys.stderr.write("nice: connected %d ms after the remote description\n"
                         % ((time.monotonic() - S["applied_at"]) * 1000))
    for line in S["rx"]:
        out(line)
    S["rx"] = []
    flush_queue()


def flush_queue():
    for line in S["queue"]:
        b = line.encode()
        nice.nice_agent_send(PTR, stream, 1, len(b), b)
    S["queue"] = []


def apply_remote():
    # libnice wants the local description complete before remote candidates (non-trickle).
    if not S["gathered"] or not S["eoc"] or S["applied"]:
        return
    if not (S["remote_ufrag"] and S["remote_pwd"]):
        return
    agent.set_remote_credentials(stream, S["remote_ufrag"], S["remote_pwd"])
    cands = [c for c in (agent.parse_remote_candidate_sdp(stream, l) for l in S["cands"]) if c]
    S["applied"] = True
    S["applied_at"] = time.monotonic()
    agent.set_remote_candidates(stream, 1, cands)


def on_gathered(_agent, _sid):
    ok, ufrag, pwd = agent.get_local_credentials(stream)
    out("a=ice-ufrag:%s" % ufrag)
    out("a=ice-pwd:%s" % pwd)
    for c in agent.get_local_candidates(stream, 1):
        out(agent.generate_local_candidate_sdp(c))
    out("a=end-of-candidates")
    S["gathered"] = True
    apply_remote()


def on_state(_agent, _sid, _comp, state):
    if state == Nice.ComponentState.FAILED and not S["connected"]:
        out("failed")
        finish(1)
    maybe_connected()


def on_selected(_agent, _sid, _comp, lc, rc):
    S["selected"] = (fmt(lc), fmt(rc))
    maybe_connected()


@RECV
def on_recv(_agent, _sid, _comp, n, buf, _data):
    line = ctypes.string_at(buf, n).decode("utf-8", "replace").rstrip("\r\n")
    if S["connected"]:
        out(line)
    elif len(S["rx"]) < 1024:
        S["rx"].append(line)


def on_stdin(ch, cond):
    if cond & GLib.IOCondition.IN:
        status, line, _n, _t = ch.read_line()
        if status == GLib.IOStatus.NORMAL and line:
            line = line.strip()
            if not S["eoc"]:
                if line.startswith("a=ice-ufrag:"):
                    S["remote_ufrag"] = line.split(":", 1)[1]
                elif line.startswith("a=ice-pwd:"):
                    S["remote_pwd"] = line.split(":", 1)[1]
                elif line.startswith("a=candidate:"):
                    S["cands"].append(line)
                elif line == "a=end-of-candidates":
                    S["eoc"] = True
                    apply_remote()
            elif line:
                S["queue"].append(line)
                if S["connected"]:
                    flush_queue()
            return True
    # EOF: leave after the linger once connected (or at the timeout).
    def done():
        if S["connected"]:
            finish(0)
            return False
        return True
    GLib.timeout_add(20, done)
    return False


agent.connect("candidate-gathering-done", on_gathered)
agent.connect("component-state-changed", on_state)
agent.connect("new-selected-pair-full", on_selected)
nice.nice_agent_attach_recv(PTR, stream, 1, glib.g_main_context_default(), on_recv, None)
GLib.io_add_watch(GLib.IOChannel.unix_new(sys.stdin.fileno()), GLib.PRIORITY_DEFAULT,
                  GLib.IOCondition.IN | GLib.IOCondition.HUP, on_stdin)


def on_timeout():
    if not S["connected"]:
        out("failed")
    finish(0 if S["connected"] else 2)
    return False


GLib.timeout_add(int(A.timeout * 1000), on_timeout)
if not agent.gather_candidates(stream):
    out("failed")
    sys.exit(3)
loop.run()
agent.remove_stream(stream)
sys.exit(S["rc"] if S["rc"] is not None else 2)
