#!/usr/bin/python3
"""One libtorrent session that seeds a fresh random file through one tracker, for another client.

Run by test/interop/aria2.test.ts with Debian's python3-libtorrent (2.0.x):

    /usr/bin/python3 lt_seed.py --tracker URL --family 4|6 --workdir DIR [--timeout 60] [--size BYTES]

It writes DIR/seed/payload.bin (random bytes) and DIR/payload.torrent (v1 only, private, the
tracker at URL its only tracker), seeds the file from one session that listens on loopback only
(127.0.0.1 or ::1, TCP only) with DHT, local service discovery, UPnP, NAT-PMP and every default
extension (so no PEX) off, announces 'started' and waits for the tracker's answer. The torrent is
marked private (BEP 27), so the other client must not look for peers anywhere but the tracker
either, even if its DHT is on.

Protocol with the test, one JSON object per line on stdout (stderr is free-form diagnostics):
  {"phase": "seeding", ...}   the file is checked, the tracker answered 'started'
  {"phase": "scrape", ...}    after the command "scrape": libtorrent's scrape of the tracker
  {"phase": "done", ...}      after the command "stop": the torrent paused, its 'stopped'
                              announce answered by the tracker, then removed, the session closed
  {"phase": "error", "error": "..."}  then exit status 2
Commands are lines on stdin. Every wait is bounded by --timeout (seconds, for the whole run).
"""
import argparse
import faulthandler
import hashlib
import json
import os
import select
import sys
import time

import libtorrent as lt

# Shared with the two-session script beside this one (Python puts the script's folder on sys.path).
from lt_swarm import loopback_settings

PIECE_SIZE = 16 * 1024
# How long after torrent_removed_alert the 'stopped' tracker_announce_alert may take to show up.


def ready_to_stop(handle):
    """True when libtorrent 2.0 would send 'stopped' for handle's tracker right now: every
    endpoint's v1 entry has its 'started' answered (start_sent) and no announce in flight."""
    entries = [ep["info_hashes"][0] for t in handle.trackers() for ep in t["endpoints"]]
    return len(entries) > 0 and all(e["start_sent"] and not e["updating"] for e in entries)
T0 = time.monotonic()


class Failure(Exception):
    pass


def emit(obj):
    obj["t"] = round(time.monotonic() - T0, 3)  # seconds since start, for diagnostics only
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def log(msg):
    sys.stderr.write("lt_seed: %s\n" % msg)
    sys.stderr.flush()


class Seed:
    def __init__(self, args):
        self.args = args
        self.deadline = time.monotonic() + args.timeout
        self.host = "127.0.0.1" if args.family == 4 else "::1"
        self.stdin_buf = b""
        self.listen_port = None
        self.replies = []      # num_peers of every tracker reply
        self.stopped_queued = 0  # 'stopped' tracker_announce_alerts
        self.stop_answered = False  # a tracker_reply_alert after the 'stopped' was queued
        self.scrapes = []      # {"complete", "incomplete"} of every scrape reply
        self.peers = []        # "ip:port" of every peer connection (either direction)
        self.removed = False
        self.notes = []        # tracker / peer trouble worth showing when something fails

    def remaining(self, what):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise Failure("timed out (%ss for the whole run) waiting for %s" % (self.args.timeout, what))
        return left

    def pump(self, until, what):
        while not until():
            self.remaining(what)
            self.ses.wait_for_alert(20)
            for a in self.ses.pop_alerts():
                self.on_alert(a)

    def command(self):
        """The next line on stdin, handling alerts while waiting."""
        while True:
            nl = self.stdin_buf.find(b"\n")
            if nl >= 0:
                line, self.stdin_buf = self.stdin_buf[:nl].strip(), self.stdin_buf[nl + 1:]
                return line.decode("utf-8", "replace")
            self.remaining("a command from the test")
            r, _, _ = select.select([0], [], [], 0.02)
            if r:
                chunk = os.read(0, 4096)
                if not chunk:
                    raise Failure("stdin closed while waiting for a command")
                self.stdin_buf += chunk
            for a in self.ses.pop_alerts():
                self.on_alert(a)

    def on_alert(self, a):
        kind = type(a).__name__
        if kind == "listen_succeeded_alert":
            if a.socket_type == lt.socket_type_t.tcp:
                self.listen_port = a.port
        elif kind == "listen_failed_alert":
            raise Failure("listen failed: %s" % a.message())
        elif kind == "tracker_reply_alert":
            if self.stopped_queued > 0:
                self.stop_answered = True
            else:
                self.replies.append(a.num_peers)
        elif kind == "scrape_reply_alert":
            self.scrapes.append({"complete": a.complete, "incomplete": a.incomplete})
        elif kind == "scrape_failed_alert":
            raise Failure("scrape failed: %s (error %s: %r)" % (a.message(), a.error.value(), a.error.message()))
        elif kind in ("peer_connect_alert", "incoming_connection_alert"):
            self.peers.append("%s %s" % (kind, a.endpoint))
        elif kind == "torrent_removed_alert":
            self.removed = True
        elif kind == "tracker_announce_alert":
            if a.event == lt.event_t.stopped:
                self.stopped_queued += 1
        elif kind in ("tracker_error_alert", "tracker_warning_alert", "peer_error_alert",
                      "peer_disconnected_alert", "torrent_error_alert", "file_error_alert",
                      "hash_failed_alert", "add_torrent_alert"):
            if kind == "add_torrent_alert" and not a.error.value():
                return
            self.notes.append("%s: %s" % (kind, a.message()))
            if kind in ("torrent_error_alert", "file_error_alert", "hash_failed_alert"):
                raise Failure(a.message())

    def main(self):
        work = os.path.abspath(self.args.workdir)
        seed_dir = os.path.join(work, "seed")
        os.makedirs(seed_dir)
        payload = os.path.join(seed_dir, "payload.bin")
        data = os.urandom(self.args.size)
        with open(payload, "wb") as f:
            f.write(data)

        fs = lt.file_storage()
        lt.add_files(fs, payload)
        # v1 only: a v2/hybrid torrent would also announce a second (SHA-256) info hash.
        ct = lt.create_torrent(fs, PIECE_SIZE, flags=lt.create_torrent.v1_only)
        ct.add_tracker(self.args.tracker)
        ct.set_priv(True)
        ct.set_creator("lt_seed.py (libtorrent %s)" % lt.__version__)
        lt.set_piece_hashes(ct, seed_dir)
        torrent = lt.bencode(ct.generate())
        torrent_path = os.path.join(work, "payload.torrent")
        with open(torrent_path, "wb") as f:
            f.write(torrent)
        ti = lt.torrent_info(torrent)

        # flags 0: no default plugins (ut_pex, ut_metadata, smart_ban)
        self.ses = lt.session(loopback_settings(self.host, self.args.family, "lt_seed"), 0)
        self.pump(lambda: self.listen_port is not None, "listen_succeeded_alert")

        p = lt.add_torrent_params()
        # Its own torrent_info: the session's network thread uses it while this thread reads ti.
        p.ti = lt.torrent_info(torrent)
        p.save_path = seed_dir
        h = self.ses.add_torrent(p)
        self.pump(lambda: h.status().is_seeding and len(self.replies) >= 1, "seeding and the tracker's reply to 'started'")
        emit({"phase": "seeding", "info_hash": str(ti.info_hashes().v1), "port": self.listen_port,
              "torrent": torrent_path, "payload": payload, "size": len(data), "piece_size": PIECE_SIZE,
              "num_pieces": ti.num_pieces(), "sha1": hashlib.sha1(data).hexdigest(),
              "first_reply_peers": self.replies[0]})

        while True:
            cmd = self.command()
            if cmd == "scrape":
                n = len(self.scrapes)
                h.scrape_tracker()
                self.pump(lambda: len(self.scrapes) > n, "the scrape reply")
                emit({"phase": "scrape", "scrape": self.scrapes[-1]})
            elif cmd == "stop":
                break
            else:
                raise Failure("unexpected command on stdin: %r" % cmd)

        # libtorrent 2.0 silently sends no 'stopped' (no alert, no packet) for a tracker
        # endpoint with an announce still in flight ('updating') or whose 'started' was never
        # answered (start_sent); see the same wait in lt_swarm.py. A fixed quiet second here was
        # beaten by a loaded machine, so wait for the state libtorrent itself checks.
        self.pump(lambda: ready_to_stop(h), "the tracker endpoint idle with 'started' answered")

        st = h.status()
        uploaded = st.all_time_upload
        # Pausing sends the 'stopped' announce while the torrent still exists, so its reply is
        # seen (tracker_reply_alert). Removing the torrent first and then closing the session
        # let the process exit with the 'stopped' queued but, once in a while, never sent.
        h.pause()
        self.pump(lambda: self.stopped_queued >= 1 and self.stop_answered, "the tracker's reply to 'stopped'")
        if self.stopped_queued != 1:
            raise Failure("libtorrent queued %d 'stopped' announces, expected 1" % self.stopped_queued)
        self.ses.remove_torrent(h)
        self.pump(lambda: self.removed, "torrent_removed_alert")
        del h
        del self.ses
        emit({"phase": "done", "uploaded": uploaded, "peers": self.peers, "replies": self.replies,
              "notes": self.notes})


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tracker", required=True)
    p.add_argument("--family", type=int, choices=(4, 6), required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--size", type=int, default=256 * 1024)
    args = p.parse_args()
    seed = Seed(args)
    try:
        seed.main()
    except Failure as e:
        for n in seed.notes:
            log(n)
        emit({"phase": "error", "error": str(e), "notes": seed.notes})
        sys.exit(2)


if __name__ == "__main__":
    # A crash inside libtorrent prints the Python stack to stderr, which the test shows.
    faulthandler.enable()
    main()
