#!/usr/bin/env python3
"""Seeds fuzz/corpus/<target>/ and writes fuzz/dicts/ from inputs outside
the repository's history: the shared fixture corpus ($TRIBUTARY_SHARED/fixtures)
and this repository's example configs. Run it before fuzzing; the corpus and
dicts directories are gitignored, nothing here is committed.

    TRIBUTARY_SHARED=/work/shared python3 fuzz/seed.py

Per target:
  parse     every feed file in the fixtures, as is;
  sanitize  the HTML inside the fixtures' description/content/summary elements
            (unescaped once, as a feed parser would hand it over);
  dates     the text of every date element (pubDate, dc:date, updated, ...)
            and JSON Feed date field;
  config    config/*.toml and deploy/*.toml, plus the example with its
            commented-out settings switched on;
  query     a handful of view query strings.
Inputs larger than --max-len bytes (default 256 KiB) are skipped.
"""

import argparse
import hashlib
import html
import os
import re
import sys
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
REPO = FUZZ.parent

FEED_SUFFIXES = {".xml", ".rss", ".atom", ".json", ".html", ".rdf"}
HTML_ELEMENTS = r"description|content|content:encoded|summary|subtitle|itunes:summary|body"
DATE_ELEMENTS = (
    r"pubDate|lastBuildDate|dc:date|dcterms:modified|dcterms:created|updated|"
    r"published|modified|issued|created|atom:updated|a10:updated"
)
QUERIES = [
    "",
    "any=rust,go",
    "all=World%20News,en&none=sport",
    "source=rfi-en,bbc-world&limit=10",
    "limit=500",
    "limit=0",
    "before=MTcwMDAwMDAwMDAwMDAwMC40Mg",
    "any=%C4%B0stanbul&any=istanbul",
    "any=a,,b,%20,c&all=a_b-c",
    "unknown=1",
]


def put(target: str, name: str, data: bytes, max_len: int, counts: dict) -> None:
    if not data or len(data) > max_len:
        return
    folder = FUZZ / "corpus" / target
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha1(data).hexdigest()[:12]
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name)[-60:]
    (folder / f"{safe}-{digest}").write_bytes(data)
    counts[target] = counts.get(target, 0) + 1


def seed_feeds(fixtures: Path, max_len: int, counts: dict) -> None:
    html_re = re.compile(rf"<({HTML_ELEMENTS})\b[^>]*>(.*?)</\1>", re.S)
    date_re = re.compile(rf"<({DATE_ELEMENTS})\b[^>]*>(.*?)</\1>", re.S)
    json_date_re = re.compile(r'"date_(?:published|modified)"\s*:\s*"([^"]*)"')
    for path in sorted(fixtures.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in FEED_SUFFIXES:
            continue
        rel = str(path.relative_to(fixtures))
        data = path.read_bytes()
        put("parse", rel, data, max_len, counts)
        text = data.decode("utf-8", "replace")
        for i, m in enumerate(html_re.finditer(text)):
            body = m.group(2)
            if body.startswith("<![CDATA["):
                body = body[len("<![CDATA[") :].removesuffix("]]>")
            else:
                body = html.unescape(body)
            if "<" in body or "&" in body:
                put("sanitize", f"{rel}.{i}", body.encode(), max_len, counts)
        dates = {m.group(2).strip() for m in date_re.finditer(text)}
        dates |= set(json_date_re.findall(text))
        for d in sorted(dates):
            put("dates", rel, d.encode(), max_len, counts)


def seed_configs(max_len: int, counts: dict) -> set:
    keys = set()
    configs = sorted((REPO / "config").glob("*.toml")) + sorted((REPO / "deploy").glob("*.toml"))
    for path in configs:
        text = path.read_text()
        put("config", path.name, text.encode(), max_len, counts)
        # The example documents most settings as comments: switch them on.
        on = re.sub(r"(?m)^(\s*)#\s?(\[|[a-z_]+\s*=)", r"\1\2", text)
        put("config", path.name + ".on", on.encode(), max_len, counts)
        keys |= set(re.findall(r"(?m)^\s*#?\s*([a-z_]+)\s*=", text))
        keys |= set(re.findall(r"(?m)^\s*#?\s*(\[\[?[a-z_]+\]\]?)", text))
    return keys


def write_dicts(config_keys: set) -> None:
    dicts = FUZZ / "dicts"
    dicts.mkdir(exist_ok=True)
    def quoted(tokens):
        # libFuzzer's dictionary syntax: printable ASCII, `\\`, `\"` and `\xNN`.
        def esc(t):
            return "".join(
                "\\" + c if c in '\\"' else c if " " <= c <= "~" else "".join(f"\\x{b:02X}" for b in c.encode())
                for c in t
            )
        return "".join(f'"{esc(t)}"\n' for t in sorted(tokens))
    (dicts / "config.dict").write_text(quoted(config_keys | {" = ", "\n", "[", "]", '"', "'''", "true", "false", "{", "}", ","}))
    (dicts / "query.dict").write_text(quoted({"any=", "all=", "none=", "source=", "limit=", "before=", "&", ",", "%20", "%C4%B0", "+"}))
    (dicts / "dates.dict").write_text(quoted({
        "GMT", "UTC", "EST", "PDT", "CEST", "Z", "+0200", "-05:00", "T", ":", "-", "/", " ",
        "Mon,", "Jan", "Feb", "Sept", "fev", "dez", "2024", "24:00", "60", "(", ")"
    }))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-len", type=int, default=256 * 1024)
    args = parser.parse_args()
    shared = os.environ.get("TRIBUTARY_SHARED")
    counts: dict = {}
    if shared and (Path(shared) / "fixtures").is_dir():
        seed_feeds(Path(shared) / "fixtures", args.max_len, counts)
    else:
        print("TRIBUTARY_SHARED is not set: parse, sanitize and dates start unseeded", file=sys.stderr)
    write_dicts(seed_configs(args.max_len, counts))
    for i, q in enumerate(QUERIES):
        put("query", f"q{i}", q.encode() or b"&", args.max_len, counts)
    for target in ["parse", "sanitize", "dates", "config", "query"]:
        (FUZZ / "corpus" / target).mkdir(parents=True, exist_ok=True)
        print(f"{target}: {counts.get(target, 0)} seeds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
