#!/usr/bin/env python3
"""Compare tributary's parsing with Python's feedparser, feed by feed, field by field.

Serves tests/fidelity/feeds/ on 127.0.0.1, writes a temporary config with one
source per feed, runs `tributary fetch` into a temporary SQLite database, exports
each source with `tributary export --source NAME --format json --limit 500`, and
compares every entry with what feedparser finds in the same bytes. Writes a
markdown report (agreement table, worst feeds, per-feed disagreements).

    python3 tests/fidelity/compare.py --tributary target/debug/tributary --out docs/FIDELITY.md

Needs python3 and feedparser (`pip install feedparser`, or Debian's
`python3-feedparser`). Nothing leaves the machine.
"""

import argparse
import calendar
import html
import http.server
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from datetime import datetime, timezone

try:
    import feedparser
except ImportError:
    sys.stderr.write(
        "compare.py needs Python's feedparser: `pip install feedparser` "
        "(or `apt-get install python3-feedparser`)\n"
    )
    sys.exit(3)

HERE = os.path.dirname(os.path.abspath(__file__))
EXPORT_LIMIT = 500
DATE_SLACK = 60  # seconds: "the same instant within a minute"
EXAMPLES = 3  # disagreement examples kept per feed and field
FIELDS = ["title", "link", "date", "author", "categories", "body"]
FIELD_NAMES = {
    "title": "titles",
    "link": "links",
    "date": "published dates",
    "author": "authors",
    "categories": "categories",
    "body": "bodies present",
}
CONTENT_TYPES = {
    ".json": "application/feed+json",
}


# ---------------------------------------------------------------- serving


class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the feed bytes as they are: one content type for every XML file
    (no charset, so both parsers must find the encoding in the document)."""

    def guess_type(self, path):
        return CONTENT_TYPES.get(os.path.splitext(path)[1].lower(), "application/xml")

    def end_headers(self):
        # No Last-Modified-driven 304s or caching surprises between runs.
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, *args):
        pass


def serve(directory):
    handler = lambda *a, **kw: Handler(*a, directory=directory, **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


# ---------------------------------------------------------------- normalizing

TAG_RE = re.compile(r"<[^>]*>")
WS_RE = re.compile(r"\s+")
TERM_FOLD_RE = re.compile(r"[\s_\-]+")
TRACKING = re.compile(r"^(utm_.*|fbclid|gclid|xtor|mc_cid|mc_eid)$", re.I)


def text(value):
    """Plain text as a reader sees it: markup dropped, entities decoded,
    whitespace runs folded."""
    if not value:
        return ""
    value = TAG_RE.sub(" ", value)
    value = html.unescape(value)
    return WS_RE.sub(" ", value).strip()


def norm_link(link):
    """Scheme and host lowercased, default port dropped: the same URL."""
    if not link:
        return ""
    link = link.strip()
    try:
        p = urllib.parse.urlsplit(link)
    except ValueError:
        return link
    host = (p.hostname or "").lower()
    port = p.port if p.port not in (None, 80, 443) else None
    netloc = host + (":%d" % port if port else "")
    if p.username:
        netloc = p.username + "@" + netloc
    path = p.path or ("/" if netloc else "")
    return urllib.parse.urlunsplit((p.scheme.lower(), netloc, path, p.query, p.fragment))


def canon_link(link):
    """What dedup keys on: no fragment, no tracking parameters."""
    link = norm_link(link)
    try:
        p = urllib.parse.urlsplit(link)
    except ValueError:
        return link
    query = [
        (k, v)
        for k, v in urllib.parse.parse_qsl(p.query, keep_blank_values=True)
        if not TRACKING.match(k)
    ]
    return urllib.parse.urlunsplit(
        (p.scheme, p.netloc, p.path, urllib.parse.urlencode(query), "")
    )


def fold(value):
    return text(value).casefold()


def term(value):
    return TERM_FOLD_RE.sub("-", text(value).casefold()).strip("-")


# ---------------------------------------------------------------- feedparser side


def fp_date(entry):
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = entry.get(key)
        if parsed:
            return calendar.timegm(parsed)
    return None


def fp_authors(entry):
    """Every spelling of the author a reader could accept."""
    names = set()
    if entry.get("author"):
        names.add(fold(entry["author"]))
    detail = entry.get("author_detail") or {}
    for key in ("name", "email"):
        if detail.get(key):
            names.add(fold(detail[key]))
    people = [a.get("name") or a.get("email") for a in entry.get("authors") or []]
    people = [fold(p) for p in people if p]
    if len(people) > 1:
        for sep in (", ", " and ", "; ", " & "):
            names.add(sep.join(people))
    names.discard("")
    return names


def fp_entries(raw, content_type, url):
    # The same base URL tributary sees, so relative links resolve alike.
    parsed = feedparser.parse(
        raw, response_headers={"content-type": content_type, "content-location": url}
    )
    # RFC 4287 4.2.1: an Atom entry without atom:author has its feed's
    # authors; feedparser leaves it empty, the reference applies the rule.
    atom = parsed.get("version", "").startswith("atom")
    feed_authors = fp_authors(parsed.feed) if atom else set()
    entries = []
    for i, e in enumerate(parsed.entries):
        bodies = [c.get("value", "") for c in e.get("content") or []]
        bodies.append(e.get("summary", "") or "")
        authors = fp_authors(e)
        entries.append(
            {
                "pos": i,
                "title": text(e.get("title")),
                "link": norm_link(e.get("link")),
                "date": fp_date(e),
                "authors": authors or feed_authors,
                "author": text(e.get("author")),
                "categories": sorted(
                    {term(t.get("term") or t.get("label")) for t in e.get("tags") or []}
                    - {""}
                ),
                "body": any(text(b) or "<img" in b for b in bodies),
            }
        )
    return parsed, entries


def json_entries(raw, url):
    """JSON Feed, which feedparser 6.0 does not read: the reference is what
    the document states, field by field (the same fields feedparser maps)."""
    doc = json.loads(raw.decode("utf-8-sig"))
    top = doc.get("authors") or ([doc["author"]] if doc.get("author") else [])
    entries = []
    for i, it in enumerate(doc.get("items") or []):
        # An item without authors has the feed's (JSON Feed 1.1, "authors").
        people = it.get("authors") or ([it["author"]] if it.get("author") else []) or top
        names = {fold(p.get("name")) for p in people if isinstance(p, dict) and p.get("name")}
        if len(people) > 1:
            names.add(", ".join(fold(p.get("name")) for p in people if p.get("name")))
        date = parse_rfc3339(it.get("date_published") or it.get("date_modified"))
        bodies = [it.get("content_html"), it.get("content_text"), it.get("summary")]
        entries.append(
            {
                "pos": i,
                "title": text(it.get("title")),
                # No url: no link (joining "" would give the feed's own URL).
                "link": norm_link(urllib.parse.urljoin(url, it.get("url") or it.get("external_url")))
                if it.get("url") or it.get("external_url")
                else "",
                "date": date,
                "authors": names - {""},
                "author": text(", ".join(p.get("name", "") for p in people if isinstance(p, dict))),
                "categories": sorted({term(t) for t in it.get("tags") or []} - {""}),
                "body": any(text(b) or "<img" in (b or "") for b in bodies),
            }
        )
    return entries


# ---------------------------------------------------------------- tributary side


def parse_rfc3339(value):
    if not value:
        return None
    value = value.replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(value).astimezone(timezone.utc).timestamp()
    except ValueError:
        return None


def tr_entries(items):
    entries = []
    for i, it in enumerate(items):
        authors = [a.get("name", "") for a in it.get("authors") or []]
        bodies = [it.get("content_html"), it.get("content_text"), it.get("summary")]
        entries.append(
            {
                "pos": i,
                "title": text(it.get("title")),
                "link": norm_link(it.get("url")),
                "date": parse_rfc3339(it.get("date_published")),
                "author": text(", ".join(a for a in authors if a)),
                "categories": sorted({term(t) for t in it.get("tags") or []} - {""}),
                "body": any(text(b) or "<img" in (b or "") for b in bodies),
                "seen_in": (it.get("_tributary") or {}).get("seen_in") or [],
            }
        )
    return entries


# ---------------------------------------------------------------- matching


def score(f, t):
    s = 0
    if f["link"] and t["link"]:
        if f["link"] == t["link"]:
            s += 8
        elif canon_link(f["link"]) == canon_link(t["link"]):
            s += 6
    if f["title"] and f["title"] == t["title"]:
        s += 3
    if f["date"] is not None and t["date"] is not None and abs(f["date"] - t["date"]) <= DATE_SLACK:
        s += 1
    return s


def match(fps, trs):
    """Pairs feedparser's entries with tributary's: best score first (same
    link, then same title, then same date), ties by position; what is left is
    paired in order when both sides still have entries."""
    candidates = []
    for f in fps:
        for t in trs:
            s = score(f, t)
            if s >= 3:
                candidates.append((-s, abs(f["pos"] - t["pos"]), f["pos"], t["pos"]))
    candidates.sort()
    used_f, used_t, pairs = set(), set(), []
    for _, _, i, j in candidates:
        if i not in used_f and j not in used_t:
            used_f.add(i)
            used_t.add(j)
            pairs.append((fps[i], trs[j]))
    rest_f = [f for f in fps if f["pos"] not in used_f]
    rest_t = [t for t in trs if t["pos"] not in used_t]
    for f, t in zip(rest_f, rest_t):
        pairs.append((f, t))
    unmatched = rest_f[len(rest_t):]
    extra = rest_t[len(rest_f):]
    pairs.sort(key=lambda p: p[0]["pos"])
    return pairs, unmatched, extra


# ---------------------------------------------------------------- comparing


def compare_pair(f, t, fetched):
    """Per field: True (agree), False (disagree) or None (not counted)."""
    verdict = {
        "title": f["title"] == t["title"],
        "link": f["link"] == t["link"],
        "author": (fold(t["author"]) in f["authors"]) if f["authors"] else not t["author"],
        "categories": f["categories"] == t["categories"],
        "body": f["body"] == t["body"],
    }
    if not f["title"] and t["title"]:
        # Untitled in the feed: Atom requires a title, and tributary gives
        # such an item its first words. Counted apart, like undated entries.
        verdict["title"] = None
    if f["date"] is None:
        verdict["date"] = None  # feedparser has no date: tributary's is its own
    elif f["date"] > fetched[1] + 86400 and fetched_at(t, fetched):
        verdict["date"] = None  # more than a day ahead: tributary clamps it, as documented
    else:
        verdict["date"] = t["date"] is not None and abs(f["date"] - t["date"]) <= DATE_SLACK
    return verdict


def fetched_at(entry, fetched):
    """Whether tributary dated the entry with the time it fetched it."""
    d = entry.get("date")
    return d is not None and fetched[0] - DATE_SLACK <= d <= fetched[1] + DATE_SLACK


def show(entry, field, fetched=None):
    if entry is None:
        return "(no entry)"
    if field == "date":
        d = entry["date"]
        if fetched and fetched_at(entry, fetched):
            return "(time of the fetch)"  # keeps the report the same from run to run
        return "(none)" if d is None else datetime.fromtimestamp(d, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if field == "categories":
        return "[" + ", ".join(entry["categories"]) + "]"
    if field == "body":
        return "yes" if entry["body"] else "no"
    value = entry[field]
    if len(value) > 100:
        value = value[:97] + "..."
    return repr(value)


def compare_feed(name, fps, trs, fetched):
    result = {
        "fp_count": len(fps),
        "tr_count": len(trs),
        "agree": {k: 0 for k in FIELDS},
        "counted": {k: 0 for k in FIELDS},
        "examples": {k: [] for k in FIELDS},
        "undated_fp": 0,
        "untitled_fp": 0,
        "clamped": 0,
        "merged": sum(1 for t in trs if len(t["seen_in"]) > 1),
    }
    pairs, unmatched, extra = match(fps, trs)
    for f, t in pairs:
        v = compare_pair(f, t, fetched)
        if v["title"] is None:
            result["untitled_fp"] += 1
        if f["date"] is None:
            result["undated_fp"] += 1
        elif v["date"] is None:
            result["clamped"] += 1
        for k in FIELDS:
            if v[k] is None:
                continue
            result["counted"][k] += 1
            if v[k]:
                result["agree"][k] += 1
            elif len(result["examples"][k]) < EXAMPLES:
                result["examples"][k].append(
                    "entry %d %s: feedparser %s, tributary %s"
                    % (f["pos"] + 1, show(f, "title") if k != "title" else "", show(f, k),
                       show(t, k, fetched))
                )
    for f in unmatched:
        for k in FIELDS:
            if k == "date" and f["date"] is None:
                continue
            result["counted"][k] += 1
        if len(result["examples"]["title"]) < EXAMPLES:
            result["examples"]["title"].append(
                "entry %d %s: missing from tributary" % (f["pos"] + 1, show(f, "title"))
            )
    result["missing"] = len(unmatched)
    result["extra"] = len(extra)
    return result


# ---------------------------------------------------------------- running tributary


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def source_name(i, filename):
    stem = re.sub(r"[^a-z0-9_-]+", "-", os.path.splitext(filename)[0].lower()).strip("-")
    return ("f%03d-%s" % (i, stem))[:60]


def write_config(path, db, port, feeds):
    lines = [
        "[daemon]",
        'database = "sqlite://%s"' % db,
        'listen = "127.0.0.1:0"',
        'base_url = "http://127.0.0.1:9/"',
        "respect_cache_headers = false",
        "",
        "[dedup]",
        "enabled = false  # near-duplicate merging would hide entries of other feeds",
        "",
    ]
    for name, filename in feeds:
        lines += [
            "[[source]]",
            'name = "%s"' % name,
            'url = "http://127.0.0.1:%d/%s"' % (port, urllib.parse.quote(filename)),
            "",
        ]
    with open(path, "w") as fh:
        fh.write("\n".join(lines))


def export(binary, config, name):
    out = run([binary, "export", "-c", config, "--source", name, "--format", "json",
               "--limit", str(EXPORT_LIMIT)])
    if out.returncode != 0:
        raise RuntimeError("export %s failed: %s" % (name, out.stderr.strip()))
    doc = json.loads(out.stdout)
    return doc.get("items") or [], bool(doc.get("next_url"))


# ---------------------------------------------------------------- report


def pct(a, n):
    return "n/a" if n == 0 else "%.1f%%" % (100.0 * a / n)


def report(results, feeds_dir, version, fetch_errors):
    names = sorted(results)
    tot_agree = {k: sum(results[n]["agree"][k] for n in names) for k in FIELDS}
    tot_count = {k: sum(results[n]["counted"][k] for n in names) for k in FIELDS}
    fp_total = sum(results[n]["fp_count"] for n in names)
    tr_total = sum(results[n]["tr_count"] for n in names)
    equal = sum(1 for n in names if results[n]["fp_count"] == results[n]["tr_count"])
    with_entries = [n for n in names if results[n]["fp_count"] > 0]
    yielding = sum(1 for n in with_entries if results[n]["tr_count"] > 0)
    out = []
    w = out.append
    w("## Results")
    w("")
    w("Generated by `python3 tests/fidelity/compare.py` with %s and feedparser %s "
      "on the %d feeds of `%s`." % (version, feedparser.__version__, len(names),
                                    os.path.relpath(feeds_dir)))
    w("")
    w("| measure | result |")
    w("| --- | --- |")
    w("| feeds | %d |" % len(names))
    w("| feeds whose entry count equals feedparser's | %d of %d |" % (equal, len(names)))
    w("| feeds with entries (per feedparser) yielding entries | %d of %d |"
      % (yielding, len(with_entries)))
    w("| entries (tributary / feedparser) | %d / %d |" % (tr_total, fp_total))
    for k in FIELDS:
        w("| %s agreeing | %s (%d of %d) |" % (FIELD_NAMES[k], pct(tot_agree[k], tot_count[k]),
                                              tot_agree[k], tot_count[k]))
    undated = sum(results[n]["undated_fp"] for n in names)
    w("| entries feedparser leaves undated (not counted in dates) | %d |" % undated)
    untitled = sum(results[n]["untitled_fp"] for n in names)
    w("| entries untitled in the feed, shown with their first words (not counted in titles) | %d |"
      % untitled)
    clamped = sum(results[n]["clamped"] for n in names)
    w("| entries dated more than a day ahead, which tributary clamps (not counted) | %d |"
      % clamped)
    w("")
    if fetch_errors:
        w("Fetch errors reported by `tributary fetch`:")
        w("")
        for name, err in sorted(fetch_errors.items()):
            w("- `%s`: %s" % (name, err))
        w("")

    def badness(n):
        r = results[n]
        bad = abs(r["fp_count"] - r["tr_count"]) * 3
        bad += sum(r["counted"][k] - r["agree"][k] for k in FIELDS)
        return bad

    worst = sorted(names, key=lambda n: (-badness(n), n))
    w("### Per feed")
    w("")
    w("Feeds with any disagreement, worst first (entries: tributary/feedparser; "
      "fields: agreeing/compared).")
    w("")
    w("| feed | entries | " + " | ".join(FIELD_NAMES[k] for k in FIELDS) + " |")
    w("| --- | --- |" + " --- |" * len(FIELDS))
    perfect = 0
    for n in worst:
        r = results[n]
        if badness(n) == 0:
            perfect += 1
            continue
        cells = []
        for k in FIELDS:
            a, c = r["agree"][k], r["counted"][k]
            cells.append("%d/%d" % (a, c) if a == c else "**%d/%d**" % (a, c))
        ent = "%d/%d" % (r["tr_count"], r["fp_count"])
        if r["tr_count"] != r["fp_count"]:
            ent = "**%s**" % ent
        w("| `%s` | %s | %s |" % (n, ent, " | ".join(cells)))
    w("")
    w("%d feeds agree with feedparser on every entry and field." % perfect)
    w("")
    w("### Disagreements")
    w("")
    w("Up to %d examples per feed and field." % EXAMPLES)
    w("")
    for n in worst:
        r = results[n]
        if badness(n) == 0:
            continue
        w("#### `%s`" % n)
        w("")
        notes = []
        if r["tr_count"] != r["fp_count"]:
            notes.append("entries: tributary %d, feedparser %d" % (r["tr_count"], r["fp_count"]))
        if r.get("truncated"):
            notes.append("more than %d entries: only the first export page compared" % EXPORT_LIMIT)
        if r["merged"]:
            notes.append("%d entries merged with another feed's" % r["merged"])
        for note in notes:
            w("- %s" % note)
        for k in FIELDS:
            for ex in r["examples"][k]:
                w("- %s: %s" % (k, ex.replace("|", "\\|")))
        w("")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tributary", default="target/debug/tributary", help="the binary")
    ap.add_argument("--feeds", default=os.path.join(HERE, "feeds"), help="feed directory")
    ap.add_argument("--out", help="markdown report (default: stdout)")
    ap.add_argument("--header", default=os.path.join(HERE, "METHOD.md"),
                    help="markdown put before the results (the method)")
    ap.add_argument("--json", help="also write the per-feed results as JSON here")
    args = ap.parse_args()

    if not os.access(args.tributary, os.X_OK):
        sys.exit("no tributary binary at %s: run `cargo build` or pass --tributary" % args.tributary)
    if not os.path.isdir(args.feeds):
        sys.exit("no feed directory at %s" % args.feeds)
    files = sorted(f for f in os.listdir(args.feeds)
                   if os.path.isfile(os.path.join(args.feeds, f)) and not f.startswith("."))
    if not files:
        sys.exit("no feeds in %s" % args.feeds)
    version = run([args.tributary, "--version"]).stdout.strip() or "tributary"

    server = serve(args.feeds)
    port = server.server_address[1]
    feeds = [(source_name(i, f), f) for i, f in enumerate(files)]
    results, fetch_errors = {}, {}
    env = dict(os.environ, RUST_LOG="error")
    with tempfile.TemporaryDirectory(prefix="tributary-fidelity-") as tmp:
        for name, filename in feeds:
            # Each feed in a database of its own: this measures how each
            # feed is read, not which of two feeds sharing a story (merged
            # across sources by design) was fetched first.
            config = os.path.join(tmp, name + ".toml")
            write_config(config, os.path.join(tmp, name + ".db"), port, [(name, filename)])
            start = time.time()
            out = run([args.tributary, "fetch", "-c", config], env=env)
            fetched = (start, time.time())
            if out.returncode != 0:
                sys.exit("tributary fetch failed (%d): %s" % (out.returncode, out.stderr.strip()))
            for line in out.stdout.splitlines():
                cols = line.split("\t")
                errors = [c for c in cols[1:] if c.startswith("error:")]
                if cols[0] == name and errors:
                    fetch_errors[cols[0]] = errors[0][len("error:"):].strip()
            path = os.path.join(args.feeds, filename)
            with open(path, "rb") as fh:
                raw = fh.read()
            ctype = Handler.guess_type(None, filename)
            url = "http://127.0.0.1:%d/%s" % (port, urllib.parse.quote(filename))
            if filename.endswith(".json"):
                fps = json_entries(raw, url)
            else:
                _, fps = fp_entries(raw, ctype, url)
            items, truncated = export(args.tributary, config, name)
            trs = tr_entries(items)
            r = compare_feed(filename, fps, trs, fetched)
            r["truncated"] = truncated
            results[filename] = r
    server.shutdown()

    body = report(results, args.feeds, version, {
        dict(feeds)[k]: v for k, v in fetch_errors.items()})
    header = ""
    if args.header and os.path.exists(args.header):
        with open(args.header) as fh:
            header = fh.read().rstrip() + "\n\n"
    # The port changes from run to run; the report must not.
    doc = (header + body + "\n").replace("127.0.0.1:%d" % port, "127.0.0.1:PORT")
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(doc)
    else:
        sys.stdout.write(doc)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1, sort_keys=True, default=list)


if __name__ == "__main__":
    main()
