# Named chdb_run.py, not chdb.py, which would shadow the chdb module.
# Runs statements in one chDB session (ClickHouse embedded in Python) for
# testinfra.CurrentClickHouse. Reads {"statements": [...], "setup": n} on
# stdin; the first n statements must succeed (at the first that fails it
# prints {"error": ..., "index": i} and exits 1); the rest run one by one,
# each failure recorded beside its statement. Prints
# {"results": [TabSeparated output], "errors": [message or ""]}.
import json
import sys
import tempfile

from chdb import session

req = json.load(sys.stdin)
setup = req.get("setup", len(req["statements"]))
with tempfile.TemporaryDirectory() as path:
    sess = session.Session(path)
    results, errors = [], []
    for i, sql in enumerate(req["statements"]):
        try:
            results.append(sess.query(sql, "TabSeparated").bytes().decode())
            errors.append("")
        except Exception as e:  # the engine's message names the problem
            if i < setup:
                json.dump({"error": str(e), "index": i}, sys.stdout)
                sys.exit(1)
            results.append("")
            errors.append(str(e))
    sess.close()
json.dump({"results": results, "errors": errors}, sys.stdout)
