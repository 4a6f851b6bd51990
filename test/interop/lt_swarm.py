#!/usr/bin/python3
"""Two libtorrent sessions that can only find each other through one tracker.

Run by test/interop/libtorrent.test.ts with Debian's python3-libtorrent (2.0.x):

    /usr/bin/python3 lt_swarm.py --tracker URL --family 4|6 --workdir DIR [--timeout 60]

Session A seeds a fresh random file, session B downloads it. Both listen on loopback only, with
DHT, local service discovery, UPnP, NAT-PMP and every default extension (so no PEX) off: the
tracker at URL is B's only way to learn A's address.

Protocol with the test, one JSON object per line on stdout (stderr is free-form diagnostics):
  {"phase": "seeding", ...}   A checked its file, announced, and scraped the tracker
  {"phase": "finished", ...}  B has every piece and the tracker answered its 'completed' announce
  {"phase": "scraped", ...}   both sessions scraped the tracker
  {"phase": "done", ...}      both torrents removed (sending 'stopped'), sessions closed, bytes compared
  {"phase": "error", "error": "..."}  then exit status 2
After "seeding", "finished" and "scraped" the script waits for a line "continue" on stdin, so the
test can look at the tracker while the swarm is in that state. Every wait is bounded by --timeout
(seconds, for the whole run); the script never waits on anything else.

Both sessions live in this one process on purpose: libtorrent shares its UDP tracker connection
id cache (keyed by the tracker's IP) between all sessions and sockets of a process, so session B
reuses the id the tracker gave session A, from another source port. See libtorrent.test.ts.
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

FILE_SIZE = 256 * 1024
PIECE_SIZE = 16 * 1024
# How long after torrent_removed_alert the 'stopped' tracker_announce_alert may take to show up.



def loopback_settings(host, family, agent):
    """Session settings for a libtorrent that can find peers only through the tracker, on loopback."""
    return {
        # Loopback only. Port 0: the kernel picks a free port, reported by listen_succeeded_alert.
        "listen_interfaces": ("%s:0" if family == 4 else "[%s]:0") % host,
        "outgoing_interfaces": host,
        # Nothing but the tracker may tell one client about another.
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        # TCP only: keeps the peer link to one well-understood path on loopback.
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "enable_incoming_tcp": True,
        "enable_outgoing_tcp": True,
        # The clients share one IP address (127.0.0.1 or ::1).
        "allow_multiple_connections_per_ip": True,
        # libtorrent's SSRF mitigation only lets a tracker on a loopback address be asked for
        # the path /announce, so the BEP 48 scrape URL .../scrape would be refused locally
        # ("blocked by SSRF mitigation", error 201) without ever reaching the tracker.
        "ssrf_mitigation": False,
        "alert_mask": lt.alert.category_t.all_categories,
        # Bounded waits for the tracker on the way out ('stopped' announces); libtorrent waits
        # this long after a UDP 'stopped' announce even when it was answered.
        "stop_tracker_timeout": 5,
        "tracker_completion_timeout": 10,
        "tracker_receive_timeout": 5,
        "user_agent": "%s (libtorrent/%s)" % (agent, lt.__version__),
    }

class Failure(Exception):
    pass


T0 = time.monotonic()


def emit(obj):
    obj["t"] = round(time.monotonic() - T0, 3)  # seconds since start, for diagnostics only
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def log(msg):
    sys.stderr.write("lt_swarm: %s\n" % msg)
    sys.stderr.flush()


class Run:
    def __init__(self, args):
        self.args = args
        self.deadline = time.monotonic() + args.timeout
        self.host = "127.0.0.1" if args.family == 4 else "::1"
        self.stdin_buf = b""
        self.notes = []  # tracker / peer trouble worth showing when something fails

    # -- bounded waiting -------------------------------------------------------------------

    def remaining(self, what):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise Failure("timed out (%ss for the whole run) waiting for %s" % (self.args.timeout, what))
        return left

    def pump(self, sessions, until, what):
        """Handles alerts of all sessions until until() is true; bounded by the deadline."""
        while not until():
            self.remaining(what)
            for name, ses in sessions:
                ses.wait_for_alert(20)
                for a in ses.pop_alerts():
                    self.on_alert(name, a)

    def wait_command(self, sessions):
        """Waits for the line "continue" on stdin while handling alerts."""
        while True:
            nl = self.stdin_buf.find(b"\n")
            if nl >= 0:
                line, self.stdin_buf = self.stdin_buf[:nl].strip(), self.stdin_buf[nl + 1:]
                if line == b"continue":
                    return
                raise Failure("unexpected command on stdin: %r" % line)
            self.remaining("'continue' from the test")
            r, _, _ = select.select([0], [], [], 0.02)
            if r:
                chunk = os.read(0, 4096)
                if not chunk:
                    raise Failure("stdin closed while waiting for 'continue'")
                self.stdin_buf += chunk
            for name, ses in sessions:
                for a in ses.pop_alerts():
                    self.on_alert(name, a)

    # -- alerts ----------------------------------------------------------------------------

    def on_alert(self, name, a):
        kind = type(a).__name__
        if kind.startswith("tracker_") or kind.startswith("scrape_") or kind == "torrent_removed_alert":
            log("%.3f %s %s: %s" % (time.monotonic() - T0, name, kind, a.message()))
        if kind == "listen_succeeded_alert":
            self.listen[name] = a.port
        elif kind == "listen_failed_alert":
            raise Failure("%s: listen failed: %s" % (name, a.message()))
        elif kind == "tracker_reply_alert":
            self.replies[name].append(a.num_peers)
            if self.stopped_queued.get(name, 0) > 0:
                self.stop_answered[name] = True
        elif kind == "scrape_reply_alert":
            self.scrapes[name].append({"complete": a.complete, "incomplete": a.incomplete})
        elif kind == "scrape_failed_alert":
            raise Failure("%s: scrape failed: %s (error %s: %r)" % (name, a.message(), a.error.value(), a.error.message()))
        elif kind == "torrent_finished_alert":
            self.finished[name] = True
            # Counted here, not after the pump returns: the reply to the 'completed' announce can
            # arrive in the same batch of alerts as the finish, and must not be counted as earlier.
            self.replies_at_finish[name] = len(self.replies[name])
        elif kind == "torrent_removed_alert":
            self.removed[name] = True
        elif kind == "tracker_announce_alert":
            if a.event == lt.event_t.stopped:
                self.stopped_queued[name] = self.stopped_queued.get(name, 0) + 1
        elif kind in ("tracker_error_alert", "tracker_warning_alert", "peer_error_alert",
                      "peer_disconnected_alert", "torrent_error_alert", "file_error_alert",
                      "hash_failed_alert", "add_torrent_alert"):
            if kind == "add_torrent_alert" and not a.error.value():
                return
            self.notes.append("%s %s: %s" % (name, kind, a.message()))
            if kind in ("torrent_error_alert", "file_error_alert", "hash_failed_alert"):
                raise Failure("%s: %s" % (name, a.message()))

    @staticmethod
    def ready_to_stop(handle):
        """True when libtorrent would send 'stopped' for handle's (only) tracker right now: each
        endpoint's v1 entry has its 'started' answered and no announce in flight."""
        entries = [ep["info_hashes"][0] for t in handle.trackers() for ep in t["endpoints"]]
        return len(entries) > 0 and all(e["start_sent"] and not e["updating"] for e in entries)

    # -- the swarm -------------------------------------------------------------------------

    def session(self):
        # flags=0: no default plugins (ut_pex, ut_metadata, smart_ban) and no default features.
        return lt.session(loopback_settings(self.host, self.args.family, "lt_swarm"), 0)

    def main(self):
        work = os.path.abspath(self.args.workdir)
        seed_dir = os.path.join(work, "a")
        dl_dir = os.path.join(work, "b")
        os.makedirs(seed_dir)
        os.makedirs(dl_dir)
        data = os.urandom(FILE_SIZE)
        with open(os.path.join(seed_dir, "payload.bin"), "wb") as f:
            f.write(data)

        fs = lt.file_storage()
        lt.add_files(fs, os.path.join(seed_dir, "payload.bin"))
        # v1 only: a v2/hybrid torrent would also announce a second (SHA-256) info hash.
        ct = lt.create_torrent(fs, PIECE_SIZE, flags=lt.create_torrent.v1_only)
        ct.add_tracker(self.args.tracker)
        lt.set_piece_hashes(ct, seed_dir)
        torrent = lt.bencode(ct.generate())
        # Each session gets a torrent_info of its own, and this script reads a third: a session's
        # network thread uses its torrent_info while this thread runs, so copying or reading a
        # shared one races with it (a copy of A's, made for B, crashed the process with SIGSEGV).
        ti = lt.torrent_info(torrent)
        info_hash = str(ti.info_hashes().v1)

        self.listen = {}
        self.replies = {"a": [], "b": []}
        self.scrapes = {"a": [], "b": []}
        self.finished = {}
        self.replies_at_finish = {}
        self.removed = {}
        self.stopped_queued = {}
        self.stop_answered = {}  # name -> a tracker_reply_alert came after its 'stopped' was queued

        sa = self.session()
        sb = self.session()
        both = [("a", sa), ("b", sb)]
        self.pump(both, lambda: "a" in self.listen and "b" in self.listen, "listen_succeeded_alert")

        # A: check the file, become a seed, announce 'started'. B is added only after the tracker
        # answered A, so that B's first announce already finds A (otherwise B would wait a whole
        # announce interval for its next one).
        pa = lt.add_torrent_params()
        pa.ti = lt.torrent_info(torrent)
        pa.save_path = seed_dir
        ha = sa.add_torrent(pa)
        self.pump(both, lambda: ha.status().is_seeding and len(self.replies["a"]) >= 1, "A seeding and announced")
        ha.scrape_tracker()
        self.pump(both, lambda: len(self.scrapes["a"]) >= 1, "A's scrape reply")
        emit({"phase": "seeding", "info_hash": info_hash, "a_port": self.listen["a"], "b_port": self.listen["b"],
              "a_scrape": self.scrapes["a"][-1], "a_replies": len(self.replies["a"])})
        self.wait_command(both)

        pb = lt.add_torrent_params()
        pb.ti = lt.torrent_info(torrent)
        pb.save_path = dl_dir
        hb = sb.add_torrent(pb)
        # B finishes, then announces 'completed'; wait for the tracker's answer to that too.
        # torrent_finished_alert comes when every piece passed its hash check; status().num_pieces
        # counts pieces written to disk, which can trail it by one piece for a moment.
        self.pump(both, lambda: self.finished.get("b", False) and hb.status().num_pieces == ti.num_pieces(),
                  "B to finish downloading (every piece hashed and written)")
        self.pump(both, lambda: len(self.replies["b"]) > self.replies_at_finish["b"], "the reply to B's 'completed' announce")
        st = hb.status()
        emit({"phase": "finished", "b_replies": len(self.replies["b"]), "b_first_reply_peers": self.replies["b"][0],
              "b_seeding": st.is_seeding, "b_total_done": st.total_done, "b_num_pieces": st.num_pieces,
              "a_num_uploads": ha.status().num_uploads})
        self.wait_command(both)

        na, nb = len(self.scrapes["a"]), len(self.scrapes["b"])
        ha.scrape_tracker()
        hb.scrape_tracker()
        self.pump(both, lambda: len(self.scrapes["a"]) > na and len(self.scrapes["b"]) > nb, "both scrape replies")
        sta, stb = ha.status(), hb.status()
        emit({"phase": "scraped", "a_scrape": self.scrapes["a"][-1], "b_scrape": self.scrapes["b"][-1],
              "a_status": {"num_complete": sta.num_complete, "num_incomplete": sta.num_incomplete},
              "b_status": {"num_complete": stb.num_complete, "num_incomplete": stb.num_incomplete}})
        self.wait_command(both)

        # Pausing a torrent sends its 'stopped' announce (see below).
        # Why the wait first: libtorrent 2.0 (torrent::announce_with_tracker, called by
        # stop_announcing when a torrent is paused or removed) skips 'stopped' SILENTLY, with no alert and
        # no packet, for a tracker endpoint that is still 'updating' (an announce in flight whose
        # reply it has not processed) or has no 'started' recorded as answered (start_sent). Both
        # live on libtorrent's network thread; an announce libtorrent starts by itself (not one
        # this script waited for) can still be in flight when the torrent is removed, and on a
        # loaded machine its reply is late. A fixed pause before removing (this script used a
        # quiet second) is a guess a loaded machine beats: then the tracker never hears
        # 'stopped'. The endpoint state is what libtorrent decides on, so wait for exactly that.
        handles = [("a", ha), ("b", hb)]
        for name, h in handles:
            if not self.ready_to_stop(h):  # diagnostics: which condition held 'stopped' back
                log("%s not ready to stop yet: %r" % (name, [{k: e[k] for k in ("start_sent", "updating", "fails")}
                                                             for t in h.trackers() for ep in t["endpoints"] for e in ep["info_hashes"][:1]]))
        self.pump(both, lambda: all(self.ready_to_stop(h) for _, h in handles),
                  "both tracker endpoints idle with 'started' answered (libtorrent's condition for sending 'stopped')")
        # Pausing sends the 'stopped' announces while the torrents still exist, so the tracker's
        # replies are seen (tracker_reply_alert). Removing the torrents first and then closing the
        # sessions let the process exit, once in a while, with a 'stopped' queued but never sent.
        ha.pause()
        hb.pause()
        self.pump(both, lambda: all(self.stop_answered.get(n, False) for n, _ in handles),
                  "the tracker's replies to both 'stopped' announces")
        for name, _ in handles:
            if self.stopped_queued.get(name, 0) != 1:
                raise Failure("%s: libtorrent queued %d 'stopped' announces, expected 1" % (name, self.stopped_queued.get(name, 0)))
        sa.remove_torrent(ha)
        sb.remove_torrent(hb)
        self.pump(both, lambda: self.removed.get("a", False) and self.removed.get("b", False), "torrent_removed_alert")
        del ha, hb, both
        del sa
        del sb
        with open(os.path.join(dl_dir, "payload.bin"), "rb") as f:
            got = f.read()
        emit({"phase": "done", "size": len(got), "identical": got == data,
              "sha1_expected": hashlib.sha1(data).hexdigest(), "sha1_got": hashlib.sha1(got).hexdigest(),
              "notes": self.notes})


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tracker", required=True)
    p.add_argument("--family", type=int, choices=(4, 6), required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--timeout", type=float, default=60.0)
    args = p.parse_args()
    run = Run(args)
    try:
        run.main()
    except Failure as e:
        for n in run.notes:
            log(n)
        emit({"phase": "error", "error": str(e), "notes": run.notes})
        sys.exit(2)


if __name__ == "__main__":
    # A crash inside libtorrent prints the Python stack to stderr, which the test shows.
    faulthandler.enable()
    main()
