"""Scenario files, their ground truth, and the window arithmetic that places thresholds.

A `Fixture` collects records (in any order), sorts them by the event time the vendor wrote
(stable, so records of one second keep the order they were added in), numbers the lines, and
resolves the expectations attached to it:

* `fire(ev, …)`: a decision on the event `ev`;
* `fire_window(…)`: a decision on the event where a sliding-window aggregate (count, distinct
  values, sum) first reaches its threshold — computed, not hand-counted;
* `fire_timer(…)`: a duration timer, due at a time; the event that moves event time past it;
* `quiet(…)`: a session that must get no decision, optionally with the window aggregate it
  reaches, to show how near the threshold it comes.
"""

import datetime as dt
import json

from pack import ACTIONS, rule_of

UTC = dt.timezone.utc


def parse_time(text):
    text = text.replace("Z", "+00:00")
    if "." in text:
        head, rest = text.split(".", 1)
        frac, tz = rest[: rest.index("+")], rest[rest.index("+") :]
        text = f"{head}.{(frac + '000000')[:6]}{tz}"
    return dt.datetime.fromisoformat(text)


def record_time(rec):
    """The event time the normalizer will read, per source."""
    if "eventTime" in rec:
        return parse_time(rec["eventTime"])
    if "published" in rec:
        return parse_time(rec["published"])
    if "stageTimestamp" in rec:
        return parse_time(rec["stageTimestamp"])
    if "createdDateTime" in rec:
        return parse_time(rec["createdDateTime"])
    if "@timestamp" in rec:
        return dt.datetime.fromtimestamp(rec["@timestamp"] / 1000, UTC)
    raise ValueError("no time in record")


def hms(t):
    t = t.astimezone(UTC)
    s = t.strftime("%H:%M:%S")
    if t.microsecond:
        s += f".{t.microsecond // 1000:03d}"
    return s


def human(seconds):
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    out = []
    if h:
        out.append(f"{h} h")
    if m:
        out.append(f"{m} min")
    if s or not out:
        out.append(f"{s} s")
    return " ".join(out)


class Ev:
    __slots__ = ("rec", "key", "time", "line", "seq")

    def __init__(self, rec, key, seq):
        self.rec = rec
        self.key = key
        self.time = record_time(rec)
        self.line = None
        self.seq = seq


class Fixture:
    def __init__(self, rel, day):
        self.rel = rel
        self.day = day
        self.events = []
        self.expect = []
        self.nones = []
        self.pending = []
        self.sessions = {}
        self.summary = ""
        self.finalized = False

    # -- building --------------------------------------------------------------------------

    def at(self, clock, day_offset=0):
        """`HH:MM:SS[.mmm]` on the fixture's day (UTC)."""
        parts = clock.split(":")
        h, m = int(parts[0]), int(parts[1])
        sec = float(parts[2]) if len(parts) > 2 else 0.0
        whole = int(sec)
        micro = int(round((sec - whole) * 1_000_000))
        return dt.datetime(
            self.day.year, self.day.month, self.day.day, h, m, whole, micro, tzinfo=UTC
        ) + dt.timedelta(days=day_offset)

    def add(self, rec, key):
        ev = Ev(rec, key, len(self.events))
        self.events.append(ev)
        return ev

    def who(self, key, text):
        """A one-line description of a session, for the README."""
        self.sessions[key] = text

    def fire(self, ev, intent, action, why, refs=None, key=None, rule=None, decided_after=None):
        """A decision on `ev` (for session `key`, default the event's own). `refs`: events whose
        line numbers `why` names as `{name}`. `rule`: the rule that decides (default: the one
        `pack.py` names for the intent). `decided_after` (a clock): the decision is dated at
        `ev` but taken only once event time passes this clock — a value outside a baseline whose
        learning period could still change, held until the period's last moment plus the
        source's grace. The session is then killed from that record on, so activity after the
        kill is expected only on the session's records from there."""
        self.expect.append(
            {"kind": "event", "ev": ev, "key": key or ev.key, "intent": intent, "action": action,
             "rule": rule_of(self.rel, intent, rule), "why": why, "refs": refs or {},
             "decided_after": self.at(decided_after) if decided_after else None}
        )

    def fire_window(
        self, key, match, *, agg, window_s, threshold, intent, action, why, value=None, alt=None,
        rule=None, edge=False,
    ):
        """`alt`: a second reading of the threshold (600 MB as 10^6 or 2^20 bytes) that must
        be crossed on the same event. `edge`: the events are placed on a window boundary on
        purpose (see `window_eval`)."""
        self.pending.append(
            dict(
                alt=alt,
                kind="window",
                key=key,
                match=match,
                agg=agg,
                window_s=window_s,
                threshold=threshold,
                intent=intent,
                action=action,
                rule=rule_of(self.rel, intent, rule),
                why=why,
                value=value,
                edge=edge,
            )
        )

    def fire_timer(self, key, due, intent, action, why, refs=None, rule=None):
        self.expect.append(
            {"kind": "timer", "due": due, "key": key, "intent": intent, "action": action,
             "rule": rule_of(self.rel, intent, rule), "why": why, "refs": refs or {}}
        )

    def quiet(self, key, why, window=None):
        """No decision for `key`. `window`: dict(match, agg, window_s, threshold[, value]) to
        assert (and report) that the aggregate stays under the threshold."""
        self.nones.append({"key": key, "why": why, "window": window})

    # -- resolving ---------------------------------------------------------------------------

    def finalize(self):
        self.events.sort(key=lambda e: (e.time, e.seq))
        for i, ev in enumerate(self.events, 1):
            ev.line = i
        for p in self.pending:
            hit, peak = window_eval(
                [e for e in self.events if e.key == p["key"] and p["match"](e)],
                p["window_s"],
                p["agg"],
                p["threshold"],
                p["value"],
                edge=p["edge"],
            )
            if hit is None:
                raise SystemExit(f"{self.rel}: {p['key']} never reaches {p['threshold']} ({p['agg']})")
            if p["alt"] is not None:
                hit2, _ = window_eval(
                    [e for e in self.events if e.key == p["key"] and p["match"](e)],
                    p["window_s"],
                    p["agg"],
                    p["alt"],
                    p["value"],
                )
                if hit2 is not hit:
                    raise SystemExit(f"{self.rel}: {p['key']}: the two threshold readings differ")
            self.expect.append(
                {
                    "kind": "event",
                    "ev": hit,
                    "key": p["key"],
                    "intent": p["intent"],
                    "action": p["action"],
                    "rule": p["rule"],
                    "why": p["why"].format(peak=peak),
                }
            )
        for e in self.expect:
            if e["kind"] == "timer":
                # The timer's source clock (its newest record less the 20-minute grace) must
                # pass the due time: the first record of the same source past due + grace.
                prefix = e["key"].split(":")[0] + ":"
                grace = dt.timedelta(minutes=20)
                after = [ev for ev in self.events
                         if ev.key.startswith(prefix) and ev.time > e["due"] + grace]
                if not after:
                    raise SystemExit(f"{self.rel}: nothing moves event time past {e['due']}")
                if any(ev.time == e["due"] for ev in self.events):
                    raise SystemExit(f"{self.rel}: an event sits exactly on the due time {e['due']}")
                e["ev"] = after[0]
                e["refs"]["trigger"] = after[0]
        for n in self.nones:
            windows = n["window"] or []
            if isinstance(windows, dict):
                windows = [windows]
            peaks = []
            for w in windows:
                for threshold in (w["threshold"], w.get("alt")):
                    if threshold is None:
                        continue
                    hit, peak = window_eval(
                        [e for e in self.events if e.key == n["key"] and w["match"](e)],
                        w["window_s"],
                        w["agg"],
                        threshold,
                        w.get("value"),
                        edge=w.get("edge", False),
                    )
                    if hit is not None:
                        raise SystemExit(f"{self.rel}: quiet session {n['key']} reaches {threshold}")
                peaks.append(peak)
            if peaks:
                n["why"] = n["why"].format(peak=f"{peaks[0]:,}")
        for e in self.expect:
            if e["action"] not in ACTIONS:
                raise SystemExit(f"{self.rel}: unknown action {e['action']!r} (one of {ACTIONS})")
        for e in self.expect:
            if e.get("refs"):
                e["why"] = e["why"].format(**{k: v.line for k, v in e["refs"].items()})
        keys = {ev.key for ev in self.events}
        for e in self.expect + self.nones:
            if e["key"] not in keys:
                raise SystemExit(f"{self.rel}: expected session {e['key']} has no events")
        listed = {e["key"] for e in self.expect} | {n["key"] for n in self.nones}
        missing = keys - listed
        if missing:
            raise SystemExit(f"{self.rel}: sessions without ground truth: {sorted(missing)}")
        self.expect.sort(key=lambda e: (e["ev"].line, e["key"]))
        self.finalized = True

    def later_lines(self, key, line, decided_after=None):
        """The session's lines after `line`; with `decided_after`, only from the first record
        (of any session: a file holds one source) dated past it, where the decision is taken."""
        if decided_after is not None:
            taken = next((ev.line for ev in self.events if ev.line > line and ev.time > decided_after),
                         None)
            if taken is None:
                return []
            line = taken - 1
        return [ev.line for ev in self.events if ev.key == key and ev.line > line]

    # -- output ----------------------------------------------------------------------------

    def ndjson(self):
        return "".join(json.dumps(ev.rec, separators=(",", ":")) + "\n" for ev in self.events)

    def ground_truth(self):
        decisions = []
        for e in self.expect:
            ev = e["ev"]
            d = {
                "line": ev.line,
                "time": ev.time.isoformat().replace("+00:00", "Z"),
                "session": e["key"],
                "intent": e["intent"],
                "rule": e["rule"],
                "action": e["action"],
            }
            if e["kind"] == "timer":
                d["timer_due"] = e["due"].isoformat().replace("+00:00", "Z")
                d["trigger_line"] = ev.line
                d["trigger_session"] = ev.key
            later = (self.later_lines(e["key"], ev.line, e.get("decided_after"))
                     if e["kind"] == "event" else [])
            if e.get("decided_after"):
                d["decided_after"] = e["decided_after"].isoformat().replace("+00:00", "Z")
            if later:
                d["later_lines"] = later
            decisions.append(d)
        return {
            "events": len(self.events),
            "decisions": decisions,
            "no_decision": [n["key"] for n in self.nones],
        }


def window_eval(evs, window_s, agg, threshold, value, edge=False):
    """First event where the aggregate over the trailing window reaches `threshold`, and the
    largest aggregate seen. The window is checked both half-open and closed so that no event
    sits on a boundary where the two readings differ — unless `edge`: then the events must sit
    on such a boundary (the two readings must differ), and the answer is the half-open one, the
    rule pack's meaning (docs/rules.md): a window of 5 min holds the events less than 5 min
    older than the newest, so one exactly 5 min older is outside."""

    def run(closed):
        peak = 0
        hit = None
        for i, ev in enumerate(evs):
            lo = ev.time - dt.timedelta(seconds=window_s)
            inside = [e for e in evs[: i + 1] if (e.time >= lo if closed else e.time > lo)]
            if agg == "count":
                v = len(inside)
            elif agg == "distinct":
                v = len({value(e) for e in inside})
            elif agg == "sum":
                v = sum(value(e) for e in inside)
            else:
                raise ValueError(agg)
            peak = max(peak, v)
            if hit is None and v >= threshold:
                hit = ev
        return hit, peak

    a = run(False)
    b = run(True)
    differ = (a[0] is None) != (b[0] is None) or (a[0] is not None and a[0] is not b[0])
    if differ and not edge:
        raise SystemExit("an event sits on a window boundary; move it")
    if edge and not differ:
        raise SystemExit("an edge case does not sit on a window boundary")
    return a
