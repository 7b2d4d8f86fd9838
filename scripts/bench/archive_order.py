"""How much smaller would an archive be in another row order? (issue 12's size goal)

Rewrites the event files of an archive with pyarrow, with the archive's own settings (zstd 3
on `raw`, 1 elsewhere; 8 MiB pages; dictionaries except on `raw`, `seq`, `origin_line`; delta `seq` and
`origin_line`), changing only the row order and the `raw` level, and prints each variant's
total size and its ratio to a gzip size given. Nothing in the archive is changed.

    target/bench/venv/bin/python scripts/bench/archive_order.py ARCHIVE_DIR GZIP_BYTES

(`scripts/bench/history.sh` makes target/bench/venv, an archive of bench.sh's mix in
target/bench/history/archive, and its gzip in target/bench/history/mix.jsonl.gz.)
"""

import glob
import os
import sys
import tempfile

import pyarrow.compute as pc
import pyarrow.parquet as pq

BY_SESSION = [("session_key", "ascending"), ("seq", "ascending")]
VARIANTS = [
    # name, sort keys, rows sorted together, zstd level of `raw`
    ("seq order (as written), level 3", None, 65536, 3),
    ("seq order, level 9", None, 65536, 9),
    ("by session in each 65,536-row group, level 3", BY_SESSION, 65536, 3),
    ("by session in each file, level 3", BY_SESSION, 1 << 40, 3),
    ("by session in each 65,536-row group, level 9", BY_SESSION, 65536, 9),
]


def rewrite(table, path, sort, group_rows, raw_level):
    names = table.schema.names
    writer = pq.ParquetWriter(
        path,
        table.schema,
        compression="zstd",
        compression_level={c: raw_level if c == "raw" else 1 for c in names},
        use_dictionary=[c for c in names if c not in ("raw", "seq", "origin_line")],
        column_encoding={"seq": "DELTA_BINARY_PACKED", "origin_line": "DELTA_BINARY_PACKED"},
        data_page_size=8 << 20,
    )
    for start in range(0, table.num_rows, group_rows):
        part = table.slice(start, group_rows)
        if sort:
            part = part.take(pc.sort_indices(part, sort_keys=sort))
        writer.write_table(part, row_group_size=min(group_rows, 65536))
    writer.close()
    return os.path.getsize(path)


def main():
    archive, gzip_bytes = sys.argv[1], int(sys.argv[2])
    files = sorted(glob.glob(os.path.join(archive, "events", "*", "*", "*.parquet")))
    if not files:
        sys.exit(f"{archive}: no event files")
    written = sum(os.path.getsize(f) for f in files)
    print(f"the archive's event files: {written / 1e6:.1f} MB, {written / gzip_bytes:.2f} of gzip")
    totals = dict.fromkeys((v[0] for v in VARIANTS), 0)
    with tempfile.TemporaryDirectory() as scratch:
        out = os.path.join(scratch, "variant.parquet")
        for f in files:
            table = pq.read_table(f)
            for name, sort, group_rows, level in VARIANTS:
                totals[name] += rewrite(table, out, sort, group_rows, level)
    for name, size in totals.items():
        print(f"{name}: {size / 1e6:.1f} MB, {size / gzip_bytes:.2f} of gzip")


if __name__ == "__main__":
    main()
