#!/usr/bin/env python3
"""Independent check of the relay's Avro files: read every *.avro file under a
directory (sorted by name, i.e. by creation time) with both fastavro and the
reference `avro` package, check they agree, and print the records as JSON
lines on stdout. Exits non-zero if a file cannot be read.

With `--count FILE...`: read each file with fastavro only (fast enough for a
soak's millions of records) and print `FILE COUNT` per file."""
import glob
import json
import os
import sys

import fastavro
from avro.datafile import DataFileReader
from avro.io import DatumReader


def main(directory):
    files = sorted(glob.glob(os.path.join(directory, "*.avro")))
    if not files:
        sys.exit(f"no .avro files in {directory}")
    for path in files:
        with open(path, "rb") as f:
            fast = list(fastavro.reader(f))
        with open(path, "rb") as f:
            ref = list(DataFileReader(f, DatumReader()))
        if fast != ref:
            sys.exit(f"{path}: fastavro and avro disagree ({len(fast)} vs {len(ref)} records)")
        sys.stderr.write(f"{path}: {len(fast)} records\n")
        for r in fast:
            print(json.dumps(r))


def count(paths):
    for path in paths:
        with open(path, "rb") as f:
            n = sum(1 for _ in fastavro.reader(f))
        print(f"{path} {n}")


if __name__ == "__main__":
    if sys.argv[1] == "--count":
        count(sys.argv[2:])
    else:
        main(sys.argv[1])
