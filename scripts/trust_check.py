"""Measures two protections of a running build, as a client would see them:
  keys     requests from one IP, each with a new random API key, answered (not 429) in a minute (limit 300/min);
  journal N  bytes the Order Manager's journal grows by for N refused 500 KB order requests.
Usage: python3 scripts/trust_check.py target/release/tradingsystem keys|journal N (it starts its own server)."""
import http.client, json, os, secrets, subprocess, sys, tempfile, time, re

binary, what = sys.argv[1], sys.argv[2]

def start(env_extra):
    d = tempfile.mkdtemp()
    env = dict(os.environ, TS_DATA_DIR=d, TS_LISTEN="127.0.0.1:0", TS_ADMIN_PASSWORD="admin-password-1", TS_LOG="error")
    env.pop("TS_DATABASE_URL", None)
    env.update(env_extra)
    p = subprocess.Popen([binary, "serve"], env=env, cwd=d, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    for line in p.stderr:
        m = re.match(r"TradingSystem listening on (\S+)", line)
        if m:
            host, port = m.group(1).replace("http://", "").rsplit(":", 1)
            return p, d, host, int(port)
    raise SystemExit("no listen line")

def conn(host, port):
    return http.client.HTTPConnection(host, port, timeout=30)

if what == "keys":
    p, d, host, port = start({})
    c = conn(host, port)
    answered = limited = 0
    t0 = time.time()
    for i in range(1000):
        c.request("GET", "/api/v1/positions", headers={"X-API-Key": "ts_" + secrets.token_hex(32)})
        r = c.getresponse(); r.read()
        if r.status == 429: limited += 1
        else: answered += 1
    print(json.dumps({"sent": 1000, "answered_non_429": answered, "limited_429": limited, "seconds": round(time.time() - t0, 2)}))
    p.kill()
elif what == "journal":
    n = int(sys.argv[3])
    p, d, host, port = start({"TS_RATE_LIMIT_PER_MINUTE": "1000000"})
    c = conn(host, port)
    c.request("POST", "/api/v1/auth/login", body=json.dumps({"username": "admin", "password": "admin-password-1"}), headers={"Content-Type": "application/json"})
    tok = json.loads(c.getresponse().read())["token"]
    journal = os.path.join(d, "journal", "oms.journal")
    before = os.path.getsize(journal)
    big = "X" * 500_000
    bodies = [
        json.dumps({"symbol": "PETR4", "side": "BUY", "type": "MARKET", "quantity": big}),
        json.dumps({"symbol": big, "side": "BUY", "type": "MARKET", "quantity": 100}),
    ]
    statuses = {}
    t0 = time.time()
    for i in range(n):
        c.request("POST", "/api/v1/orders", body=bodies[i % 2], headers={"Authorization": "Bearer " + tok, "Content-Type": "application/json"})
        r = c.getresponse(); r.read()
        statuses[r.status] = statuses.get(r.status, 0) + 1
    after = os.path.getsize(journal)
    print(json.dumps({"requests": n, "statuses": statuses, "journal_bytes_grown": after - before, "per_request": round((after - before) / n, 1), "seconds": round(time.time() - t0, 1)}))
    p.kill()
