#!/usr/bin/python3
"""Logs split by day: the data step of scripts/daily.sh.

  day_logs.py split LOGS OUT [--history_days=K]
      LOGS/events.csv, LOGS/items.csv and, when present, LOGS/users.csv (the
      layout of docs/data_format.md, e.g. `vrec datagen --logs=LOGS`) -> one
      folder per day that has events, OUT/day-NNN/, day d being unix time
      [d*86400, (d+1)*86400). Each holds events.csv with the events of days
      d-K+1 .. d (the earlier days are the context `vrec convert
      --label_from=d*86400` reads as history only), items.csv with the items
      uploaded before the day ends (all of them when items have no upload
      time), users.csv as given, and label_from (d*86400). Rows keep their
      order in the file.
"""
import argparse
import csv
import os
import shutil

DAY = 86400


def split(logs_dir, out, history_days):
    by_day = {}
    with open(os.path.join(logs_dir, "events.csv"), newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        ts = header.index("timestamp")
        for row in reader:
            by_day.setdefault(int(float(row[ts])) // DAY, []).append(row)
    with open(os.path.join(logs_dir, "items.csv"), newline="") as f:
        reader = csv.reader(f)
        item_header = next(reader)
        up = item_header.index("upload_time") if "upload_time" in item_header else None
        items = list(reader)
    users = os.path.join(logs_dir, "users.csv")
    for day in sorted(by_day):
        folder = os.path.join(out, f"day-{day:03d}")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "events.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            for d in range(day - history_days + 1, day + 1):
                w.writerows(by_day.get(d, []))
        with open(os.path.join(folder, "items.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(item_header)
            w.writerows(r for r in items
                        if up is None or not r[up] or float(r[up]) < (day + 1) * DAY)
        if os.path.exists(users):
            shutil.copyfile(users, os.path.join(folder, "users.csv"))
        with open(os.path.join(folder, "label_from"), "w") as f:
            f.write(f"{day * DAY}\n")
        print(folder)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("split")
    s.add_argument("logs")
    s.add_argument("out")
    s.add_argument("--history_days", type=int, default=1)
    args = ap.parse_args()
    if args.history_days < 1:
        ap.error("--history_days must be >= 1")
    split(args.logs, args.out, args.history_days)


if __name__ == "__main__":
    main()
