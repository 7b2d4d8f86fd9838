#!/usr/bin/env python3
"""Reads a sessionguard archive with pyarrow (Apache Arrow's C++ Parquet reader, not the Rust
one that wrote it) and prints what a user would check, as one JSON object:

  events           rows of the `events` table (every file under events/, hive partitions)
  by_source        rows per `source` partition value
  dates            the `date` partition values
  event_columns    the columns pyarrow sees, partition columns included
  codecs           the compression codecs of every column chunk of every file
  raw_first        the `raw` column of the row with the least `seq` (the first record read)
  decisions        the `decision` column (each decision's JSON line), in `seq` order
  decision_rules   rows of `decisions` per `rule_id`

Usage: read-archive.py DIR. tests/archive.rs runs it with the venv scripts/test.sh makes.
"""
import json
import sys
from collections import Counter
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq


def table(root):
    return ds.dataset(root, format="parquet", partitioning="hive").to_table()


def main():
    root = Path(sys.argv[1])
    events = table(root / "events")
    decisions = table(root / "decisions")
    codecs = set()
    for path in root.rglob("*.parquet"):
        meta = pq.ParquetFile(path).metadata
        for g in range(meta.num_row_groups):
            for c in range(meta.num_columns):
                codecs.add(meta.row_group(g).column(c).compression)
    seqs = events.column("seq").to_pylist()
    first = seqs.index(min(seqs))
    order = sorted(range(decisions.num_rows), key=lambda i: decisions.column("seq")[i].as_py())
    lines = decisions.column("decision").to_pylist()
    print(json.dumps({
        "events": events.num_rows,
        "by_source": dict(sorted(Counter(events.column("source").to_pylist()).items())),
        "dates": sorted({str(d) for d in events.column("date").to_pylist()}),
        "event_columns": events.column_names,
        "codecs": sorted(codecs),
        "raw_first": events.column("raw")[first].as_py(),
        "decisions": [lines[i] for i in order],
        "decision_rules": dict(sorted(Counter(decisions.column("rule_id").to_pylist()).items())),
    }))


if __name__ == "__main__":
    main()
