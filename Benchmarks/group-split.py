#!/usr/bin/env python3
"""Three proxies in front of a primary and a replica, with clients writing through each while
faults hit the primary and the network; counts writes that reached a backend other than the
one the other proxies' writes reached at that moment (a split), for a group of proxies
(-etcd-group) and for three independent proxies (today's behaviour), side by side.

Faults, in order, for each mode:
  partial   the primary unreachable from one proxy only (its network namespace loses the route)
  kill      the primary killed for a few seconds, then back

Usage: Benchmarks/group-split.sh  (installs etcd-server, builds the release binary, runs this)
       python3 Benchmarks/group-split.py BINARY
"""
import json, os, random, signal, socket, subprocess, sys, tempfile, threading, time
from collections import Counter

BINARY = sys.argv[1] if len(sys.argv) > 1 else ".build/release/tcp-fallback"
TAG = "%05x" % random.randrange(0x100000)
NS, LINK = "tf-bench-" + TAG, "tb" + TAG
NET = "10.233.%d" % random.randrange(256)
HOST, INSIDE = NET + ".1", NET + ".2"
PRIMARY_ADDR = "10.234.%d.1" % random.randrange(256)
WORK = tempfile.mkdtemp(prefix="tcp-fallback-group-split.")
procs = []


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def free_port():
    s = socket.socket()
    s.bind(("0.0.0.0", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cleanup():
    for p in procs:
        try:
            p.kill()
            p.wait(timeout=5)
        except Exception:
            pass
    sh("ip", "link", "del", LINK + "a", check=False)
    sh("ip", "netns", "del", NS, check=False)
    sh("rm", "-rf", WORK, check=False)


class Backend:
    """Answers "W proxy seq" with "OK name" and records every write it took."""

    def __init__(self, name, port):
        self.name, self.port, self.writes, self.lock = name, port, [], threading.Lock()
        self.listener = None
        self.start()

    def start(self):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("0.0.0.0", self.port))
        self.listener.listen(512)
        threading.Thread(target=self.accept, args=(self.listener,), daemon=True).start()

    def stop(self):
        self.listener.close()

    def accept(self, listener):
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        try:
            conn.settimeout(5)
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(100)
                if not chunk:
                    return
                data += chunk
            _, proxy, seq = data.decode().split()
            with self.lock:
                self.writes.append((time.monotonic(), int(proxy), int(seq), self.name))
            conn.sendall(("OK %s\n" % self.name).encode())
        except OSError:
            pass
        finally:
            conn.close()


def start_etcd():
    ports = [(free_port(), free_port()) for _ in range(3)]
    cluster = ",".join("e%d=http://127.0.0.1:%d" % (i, p[1]) for i, p in enumerate(ports))
    for i, (client, peer) in enumerate(ports):
        procs.append(subprocess.Popen(
            ["/usr/bin/etcd", "--name", "e%d" % i, "--data-dir", "%s/etcd%d" % (WORK, i),
             "--listen-client-urls", "http://0.0.0.0:%d" % client, "--advertise-client-urls", "http://%s:%d" % (HOST, client),
             "--listen-peer-urls", "http://127.0.0.1:%d" % peer, "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % peer,
             "--initial-cluster", cluster, "--initial-cluster-token", TAG, "--initial-cluster-state", "new",
             "--heartbeat-interval", "50", "--election-timeout", "500", "--log-level", "error", "--logger", "zap"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    urls = ["http://%s:%d" % (HOST, c) for c, _ in ports]
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            put(urls[0], "/health-probe", "x")
            return urls
        except Exception:
            time.sleep(0.2)
    raise SystemExit("etcd did not start")


def put(url, key, value):
    import base64, urllib.request
    body = json.dumps({"key": base64.b64encode(key.encode()).decode(), "value": base64.b64encode(value.encode()).decode()}).encode()
    urllib.request.urlopen(urllib.request.Request(url + "/v3/kv/put", data=body), timeout=3).read()


def start_proxy(index, urls, group, inside=False):
    control = "%s/p%d.sock" % (WORK, index)
    args = [BINARY, "-etcd", ",".join(urls), "-check-interval", "100ms", "-rise", "2", "-fall", "2", "-timeout", "300ms",
            "-control", control, "-etcd-prefix", "/bench-" + TAG]
    if group:
        args += ["-etcd-group", "g" + TAG, "-etcd-member", "p%d" % index]
    args.append("0.0.0.0:0")
    if inside:
        args = ["ip", "netns", "exec", NS] + args
    log = open("%s/p%d.log" % (WORK, index), "w")
    p = subprocess.Popen(args, stdout=log, stderr=log)
    procs.append(p)
    deadline = time.time() + 20
    while time.time() < deadline:
        text = open("%s/p%d.log" % (WORK, index)).read()
        if "listening on " in text:
            port = int(text.split("listening on ")[1].split(";")[0].rsplit(":", 1)[1])
            return p, (INSIDE if inside else "127.0.0.1", port)
        time.sleep(0.05)
    raise SystemExit("proxy %d did not start:\n%s" % (index, open("%s/p%d.log" % (WORK, index)).read()))


def client(index, address, stop, failures):
    seq = 0
    while not stop.is_set():
        seq += 1
        try:
            with socket.create_connection(address, timeout=2) as s:
                s.sendall(b"W %d %d\n" % (index, seq))
                if not s.recv(100).startswith(b"OK"):
                    failures[index] += 1
        except OSError:
            failures[index] += 1
            time.sleep(0.01)
        time.sleep(0.005)


def splits(writes, window=0.1):
    """Writes that reached another backend than most of the other proxies' writes in the same
    and the neighbouring windows; and the longest run of such writes, in seconds."""
    bins = {}
    for t, proxy, _, backend in writes:
        bins.setdefault(int(t / window), Counter())[(proxy, backend)] += 1
    count, longest, start = 0, 0.0, {}
    for t, proxy, _, backend in sorted(writes):
        k = int(t / window)
        others = Counter()
        for j in (k - 1, k, k + 1):
            for (q, b), n in bins.get(j, {}).items():
                if q != proxy:
                    others[b] += n
        if others and backend != others.most_common(1)[0][0]:
            count += 1
            start.setdefault(proxy, t)
            longest = max(longest, t - start[proxy])
        else:
            start.pop(proxy, None)
    return count, longest


def run(mode, urls, primary, replica, network_block):
    group = mode == "group"
    put(urls[0], "/bench-%s/backends" % TAG, json.dumps(["%s:%d" % (PRIMARY_ADDR, primary.port), "%s:%d" % (HOST, replica.port)]))
    proxies = [start_proxy(i, urls, group, inside=(i == 2)) for i in range(3)]
    time.sleep(2)
    primary.writes.clear(); replica.writes.clear()
    stop, failures = threading.Event(), Counter()
    threads = [threading.Thread(target=client, args=(i, proxies[i][1], stop, failures), daemon=True) for i in range(3)]
    for t in threads:
        t.start()
    time.sleep(2)
    network_block(True); time.sleep(4); network_block(False); time.sleep(3)
    primary.stop(); time.sleep(4); primary.start(); time.sleep(4)
    stop.set()
    for t in threads:
        t.join()
    for p, _ in proxies:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=15)
    writes = primary.writes + replica.writes
    split, longest = splits(writes)
    per = Counter(b for (_, _, _, b) in writes)
    return {"writes": len(writes), "to_primary": per["primary"], "to_replica": per["replica"], "split": split,
            "longest_split_s": longest, "failed": sum(failures.values()), "failed_by_proxy": dict(failures)}


def main():
    if os.getuid() != 0:
        raise SystemExit("needs root (network namespaces)")
    try:
        for step in [["netns", "add", NS], ["link", "add", LINK + "a", "type", "veth", "peer", "name", LINK + "b"],
                     ["link", "set", LINK + "b", "netns", NS], ["addr", "add", HOST + "/24", "dev", LINK + "a"],
                     ["addr", "add", PRIMARY_ADDR + "/32", "dev", LINK + "a"], ["link", "set", LINK + "a", "up"],
                     ["netns", "exec", NS, "ip", "addr", "add", INSIDE + "/24", "dev", LINK + "b"],
                     ["netns", "exec", NS, "ip", "link", "set", LINK + "b", "up"],
                     ["netns", "exec", NS, "ip", "link", "set", "lo", "up"],
                     ["netns", "exec", NS, "ip", "route", "add", PRIMARY_ADDR + "/32", "dev", LINK + "b"]]:
            sh("ip", *step)

        def block(on):
            if on:
                sh("ip", "netns", "exec", NS, "ip", "route", "replace", "prohibit", PRIMARY_ADDR + "/32")
            else:
                sh("ip", "netns", "exec", NS, "ip", "route", "replace", PRIMARY_ADDR + "/32", "dev", LINK + "b")

        urls = start_etcd()
        primary, replica = Backend("primary", free_port()), Backend("replica", free_port())
        results = {mode: run(mode, urls, primary, replica, block) for mode in ["independent", "group"]}
        print("\n3 proxies (one cut from the primary for 4 s, then the primary killed for 4 s); clients write through each")
        print("%-12s %8s %10s %10s %14s %18s %8s" % ("mode", "writes", "to primary", "to replica", "split writes", "longest split (s)", "failed"))
        for mode, r in results.items():
            print("%-12s %8d %10d %10d %14d %18.3f %8d" % (mode, r["writes"], r["to_primary"], r["to_replica"], r["split"], r["longest_split_s"], r["failed"]))
        for mode, r in results.items():
            print("%s: failed writes by proxy (proxy 2 is the one cut off): %s" % (mode, r["failed_by_proxy"]))
        print("split: a write that reached another backend than most of the other proxies' writes within 100 ms")
    finally:
        cleanup()


if __name__ == "__main__":
    main()
