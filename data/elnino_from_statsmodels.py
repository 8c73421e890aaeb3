#!/usr/bin/env python3
"""Write data/elnino.csv from statsmodels' bundled El Nino dataset.

statsmodels ships the series as one row per year with twelve monthly
columns (statsmodels/datasets/elnino/elnino.csv); this writes it long, one
row per month, so that time runs down the rows as loopgrad's time-series
windows expect. Only the standard library is used:

    python3 -m pip download statsmodels --no-deps -d /tmp/sm
    python3 -m zipfile -e /tmp/sm/statsmodels-*.whl /tmp/sm/whl
    python3 data/elnino_from_statsmodels.py /tmp/sm/whl/statsmodels/datasets/elnino/elnino.csv > data/elnino.csv
"""
import csv
import sys


def main(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, years = rows[0], rows[1:]
    assert header[0] == "YEAR" and len(header) == 13, header
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["year", "month", "sst"])
    for row in years:
        for month, value in enumerate(row[1:], start=1):
            out.writerow([row[0], month, value])


if __name__ == "__main__":
    main(sys.argv[1])
