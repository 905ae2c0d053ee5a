#!/usr/bin/python3
"""Logs of a generated world, split by day: the data step of scripts/daily.sh.

  day_logs.py logs VREC WORLD OUT
                               a world written by `vrec datagen --max_history=1
                               --max_examples_per_user=0 --test_users=0` (every
                               watch after a user's first is a training example)
                               -> OUT/events.csv (user,item,timestamp,event) and
                               OUT/items.csv (item,upload_time,topic), the
                               layout of docs/data_format.md, ids as strings
  day_logs.py split LOGS OUT   LOGS/events.csv and LOGS/items.csv -> one folder
                               per day, OUT/day-NNN/{events,items}.csv, day d
                               being unix time [d*86400, (d+1)*86400); a day's
                               items are those uploaded before it ends

`logs` stands in for `vrec datagen --logs=DIR` (same files) until that lands;
`split` works on either. The world's records are read through `vrec inspect`
(its one-line text form), so this needs no protobuf module. A user's first
watch is known only as the first example's history: it is logged 60 s before
that example. Searches are not logged.
"""
import csv
import os
import re
import subprocess
import sys

DAY = 86400
FIELD = re.compile(r"(\w+): (\S+)")


def records(vrec, path):
    """The records of a record file as {field: [values]}, through vrec inspect."""
    out = subprocess.run([vrec, "inspect", "--show=2000000000", path], check=True,
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        if not line.startswith("  ["):
            continue
        fields = {}
        for name, value in FIELD.findall(line.split("] ", 1)[1]):
            fields.setdefault(name, []).append(value)
        yield fields


def logs(vrec, world, out):
    os.makedirs(out, exist_ok=True)
    folder = os.path.join(world, "candidate")
    events = []
    first = {}  # user -> (time of the earliest example, its history's first watch)
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".rec"):
            continue
        for r in records(vrec, os.path.join(folder, name)):
            user, t = r["user_id"][0], float(r.get("time", ["0"])[0])
            events.append((user, r["label_video"][0], round(t * DAY)))
            if "watch_history" in r and (user not in first or t < first[user][0]):
                first[user] = (t, r["watch_history"][0])
    for user, (t, video) in first.items():
        events.append((user, video, round(t * DAY) - 60))
    events.sort(key=lambda e: (e[2], e[0]))
    with open(os.path.join(out, "events.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["user", "item", "timestamp", "event"])
        for user, video, ts in events:
            w.writerow([user, video, ts, "watch"])
    with open(os.path.join(out, "items.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["item", "upload_time", "topic"])
        for r in records(vrec, os.path.join(world, "videos.rec")):
            upload = float(r.get("upload_time", ["0"])[0])
            w.writerow([r["video_id"][0], round(upload * DAY), r.get("topic", ["0"])[0]])
    print(f"{len(events)} events, {len(first)} users", file=sys.stderr)


def split(logs_dir, out):
    days = {}
    with open(os.path.join(logs_dir, "events.csv"), newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        ts = header.index("timestamp")
        for row in reader:
            days.setdefault(int(row[ts]) // DAY, []).append(row)
    with open(os.path.join(logs_dir, "items.csv"), newline="") as f:
        reader = csv.reader(f)
        item_header = next(reader)
        up = item_header.index("upload_time")
        items = sorted(reader, key=lambda r: int(float(r[up])))
    for day, rows in sorted(days.items()):
        folder = os.path.join(out, f"day-{day:03d}")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "events.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(rows)
        with open(os.path.join(folder, "items.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(item_header)
            w.writerows(r for r in items if int(float(r[up])) < (day + 1) * DAY)
        print(folder)


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "logs":
        logs(sys.argv[2], sys.argv[3], sys.argv[4])
    elif len(sys.argv) == 4 and sys.argv[1] == "split":
        split(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: day_logs.py logs VREC WORLD OUT | day_logs.py split LOGS OUT")


if __name__ == "__main__":
    main()
