import Foundation
import Testing
import TestSupport

/// `-config`: one process serving named listeners from a YAML file, `-check-config`, and
/// reloads (`ctl reload`, SIGHUP) that change listeners and backends under load.
@Suite struct ConfigurationFileTests {
    /// The port the listener `name` bound, from its start-up line.
    static func port(of name: String, in log: String) -> Int? {
        let lines = log.split(separator: "\n").filter { $0.contains("[\(name)] tcp-fallback") && $0.contains("listening on ") }
        guard let line = lines.last, let range = line.range(of: "listening on ") else { return nil }
        let address = line[range.upperBound...].prefix(while: { $0 != ";" && $0 != " " })
        return address.split(separator: ":").last.flatMap { Int($0) }
    }

    static func write(_ text: String, to path: String) throws {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    @Test func threeListenersEachServeByTheirOwnBalance() async throws {
        let directory = try TemporaryDirectory()
        let (a, b, c) = (try TestServer.naming("a"), try TestServer.naming("b"), try TestServer.naming("c"))
        let (e1, e2) = (try TestServer.echo(idleLimit: 60), try TestServer.echo(idleLimit: 60))
        let control = directory.file("control.sock")
        let file = directory.file("tf.yaml")
        try Self.write(
            """
            control: \(control)
            defaults:
              check-interval: 200ms
              timeout: 2s
            listeners:
              writer:
                listen: 127.0.0.1:0
                backends: [127.0.0.1:\(a.port), 127.0.0.1:\(b.port)]
              reader:
                listen: 127.0.0.1:0
                balance: roundrobin
                maxthreads: 1         # one loop: one turn counter, an exact rotation
                backends:
                  - 127.0.0.1:\(a.port)
                  - 127.0.0.1:\(b.port)
                  - 127.0.0.1:\(c.port)
              batch:
                listen: 127.0.0.1:0
                balance: leastconn
                backends: [127.0.0.1:\(e1.port), 127.0.0.1:\(e2.port)]
            """, to: file)
        let proxy = try ProxyProcess(["-config", file])
        defer { proxy.stop() }
        // Every listener has logged its line once the control socket opens.
        #expect(await proxy.logShows("control socket at"), "\(proxy.log)")
        let writer = try #require(Self.port(of: "writer", in: proxy.log), "\(proxy.log)")
        let reader = try #require(Self.port(of: "reader", in: proxy.log), "\(proxy.log)")
        let batch = try #require(Self.port(of: "batch", in: proxy.log), "\(proxy.log)")
        #expect(Set([writer, reader, batch]).count == 3)

        // first: always the first backend.
        for _ in 0..<4 { #expect(try TestSocket.backendName(viaProxyAt: writer) == "a") }
        // roundrobin: each in turn.
        var names: [String] = []
        for _ in 0..<6 { names.append(try TestSocket.backendName(viaProxyAt: reader)) }
        #expect(names.filter { $0 == "a" }.count == 2 && names.filter { $0 == "b" }.count == 2 && names.filter { $0 == "c" }.count == 2, "\(names)")
        // leastconn: two held connections go to two backends (first would put both on e1).
        var held: [TestSocket] = []
        defer { for socket in held { socket.close() } }
        for _ in 0..<2 {
            let socket = try TestSocket.connect(port: batch)
            try socket.send("x")
            #expect(try socket.receive(exactly: 1) == Array("x".utf8))
            held.append(socket)
        }
        let (status, json) = try runProxyBinary(["ctl", "-control", control, "show", "backends", "--json"])
        #expect(status == 0, "\(json)")
        let listeners = try #require(
            (try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])?["listeners"] as? [[String: Any]], "\(json)")
        #expect(listeners.map { $0["name"] as? String } == ["writer", "reader", "batch"])
        let active = (listeners[2]["backends"] as? [[String: Any]])?.map { $0["active_connections"] as? Int }
        #expect(active == [1, 1], "\(json)")

        // One backend named on one listener; the log names the listener.
        let (disabled, text) = try runProxyBinary(["ctl", "-control", control, "disable", "writer/127.0.0.1:\(a.port)"])
        #expect(disabled == 0 && text.contains("writer: 127.0.0.1:\(a.port) is disabled"), "\(text)")
        #expect(try TestSocket.backendName(viaProxyAt: writer) == "b")
        #expect(try TestSocket.backendName(viaProxyAt: reader) != "")
        let (unknown, message) = try runProxyBinary(["ctl", "-control", control, "disable", "nosuch/127.0.0.1:\(a.port)"])
        #expect(unknown == 1 && message.contains("no listener \"nosuch\"; listeners: writer, reader, batch"), "\(message)")
        #expect(await proxy.logShows("[writer] backend 127.0.0.1:\(a.port)"), "\(proxy.log)")

        // Stats lines name their listener.
        let (_, stats) = try runProxyBinary(["ctl", "-control", control, "show", "stats"])
        #expect(stats.contains("stats listener batch:") && stats.contains("stats backend reader/127.0.0.1:\(c.port):"), "\(stats)")
    }

    /// Each way a file can be wrong: exit status 2, the file, the line and the key.
    @Test(arguments: [
        ("listeners:\n  a:\n    listen: 127.0.0.1:0\n    backends: [127.0.0.1:1\n", ":5:", "YAML syntax"),
        ("listeners:\n  a:\n    listen: 127.0.0.1:0\n    backends: [127.0.0.1:1]\n    timout: 2s\n", ":5:", "key \"timout\": unknown key"),
        ("listeners:\n  a:\n    listen: 127.0.0.1:0\n    backends: [127.0.0.1:1, nowhere]\n", ":4:", "key \"backends\": invalid backend address \"nowhere\""),
        ("listeners:\n  a:\n    listen: 127.0.0.1:99999\n    backends: [127.0.0.1:1]\n", ":3:", "key \"listen\""),
        (
            "listeners:\n  a:\n    listen: 127.0.0.1:4100\n    backends: [127.0.0.1:1]\n  b:\n    listen: :4100\n    backends: [127.0.0.1:2]\n", ":6:",
            "key \"listen\": listener b listens on :4100, as listener a does (line 3)"
        ),
        ("defaults:\n  timeout: 0s\nlisteners:\n  a:\n    listen: 127.0.0.1:0\n    backends: [127.0.0.1:1]\n", ":2:", "key \"timeout\": listener a: -timeout must be greater than 0"),
        ("listeners:\n  a:\n    listen: 127.0.0.1:0\n    backends: [127.0.0.1:1]\n    balance: random\n", ":5:", "key \"balance\""),
        ("logfile: /tmp/x\ntimeout: 2s\nlisteners:\n  a:\n    listen: 127.0.0.1:0\n    backends: [127.0.0.1:1]\n", ":2:", "\"timeout\" is a listener key"),
        ("listeners:\n  a:\n    listen: 127.0.0.1:0\n    backends: [127.0.0.1:1]\n    control: /tmp/c.sock\n", ":5:", "\"control\" is a process-wide key"),
        ("control: /tmp/c.sock\n", ":1:", "no listeners"),
    ])
    func invalidFilesAreRefusedWithTheLineAndTheKey(text: String, line: String, message: String) throws {
        let directory = try TemporaryDirectory()
        let file = directory.file("bad.yaml")
        try Self.write(text, to: file)
        let (status, output) = try runProxyBinary(["-config", file, "-check-config"])
        #expect(status == 2, "\(output)")
        #expect(output.contains(file + line), "\(output)")
        #expect(output.contains(message), "\(output)")
        // Starting with it fails the same way, before anything listens.
        let (startStatus, startOutput) = try runProxyBinary(["-config", file])
        #expect(startStatus == 2 && startOutput.contains(message), "\(startOutput)")
    }

    /// The example installed as /etc/tcp-fallback.yaml.example is valid as shipped.
    @Test func theExampleFileIsValid() throws {
        let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("contrib/tcp-fallback.yaml").path
        let (status, output) = try runProxyBinary(["-config", example, "-check-config"])
        #expect(status == 0 && output.contains("2 listener(s)") && output.contains("configuration OK"), "\(output)")
    }

    @Test func aValidFileIsCheckedWithoutStarting() throws {
        let directory = try TemporaryDirectory()
        let file = directory.file("ok.yaml")
        try Self.write("listeners:\n  a:\n    listen: 127.0.0.1:0\n    backends: [127.0.0.1:1, 127.0.0.1:2]\n    balance: leastconn\n", to: file)
        let (status, output) = try runProxyBinary(["-config", file, "-check-config"])
        #expect(status == 0, "\(output)")
        #expect(output.contains("listener a: 127.0.0.1:0, backends 127.0.0.1:1, 127.0.0.1:2, balance leastconn"), "\(output)")
        #expect(output.contains("configuration OK"))
        let (both, message) = try runProxyBinary(["-config", file, "127.0.0.1:0", "127.0.0.1:1"])
        #expect(both == 2 && message.contains("-config takes no listen address or backends on the command line"), "\(message)")
    }

    @Test func reloadsChangeListenersAndBackendsUnderLoadWithoutFailingAClient() async throws {
        let directory = try TemporaryDirectory()
        let control = directory.file("control.sock")
        let file = directory.file("tf.yaml")
        let (e1, e2, e3) = (try TestServer.echo(idleLimit: 120), try TestServer.echo(idleLimit: 120), try TestServer.echo(idleLimit: 120))
        func listenerA(_ backends: [TestServer], extra: String = "") -> String {
            "  a:\n    listen: 127.0.0.1:0\n    backends: [\(backends.map { "127.0.0.1:\($0.port)" }.joined(separator: ", "))]\n\(extra)"
        }
        let listenerB = "  b:\n    listen: 127.0.0.1:0\n    balance: roundrobin\n    backends: [127.0.0.1:\(e2.port), 127.0.0.1:\(e3.port)]\n"
        let listenerC = "  c:\n    listen: 127.0.0.1:0\n    balance: leastconn\n    backends: [127.0.0.1:\(e3.port), 127.0.0.1:\(e1.port)]\n"
        let head = "control: \(control)\nshutdown-grace: 60s\ndefaults:\n  check-interval: 200ms\n  close-on-down: false\nlisteners:\n"
        try Self.write(head + listenerA([e1, e2]) + listenerB, to: file)
        let proxy = try ProxyProcess(["-config", file])
        defer { proxy.stop() }
        // Every listener has logged its line once the control socket opens.
        #expect(await proxy.logShows("control socket at"), "\(proxy.log)")
        let portA = try #require(Self.port(of: "a", in: proxy.log), "\(proxy.log)")
        let portB = try #require(Self.port(of: "b", in: proxy.log), "\(proxy.log)")
        func reload() throws -> (Int32, String) { try runProxyBinary(["ctl", "-control", control, "reload"]) }

        // Connections held across every reload, on a listener that restarts and on one that goes.
        let heldA = try TestSocket.connect(port: portA)
        defer { heldA.close() }
        let heldB = try TestSocket.connect(port: portB)
        defer { heldB.close() }
        for socket in [heldA, heldB] {
            try socket.send("h")
            #expect(try socket.receive(exactly: 1) == Array("h".utf8))
        }
        let loadA = EchoLoad(port: portA)
        let loadB = EchoLoad(port: portB)
        try await Task.sleep(for: .milliseconds(300))

        // 1. Backends of a reordered and one added; listener c added.
        try Self.write(head + listenerA([e2, e1, e3]) + listenerB + listenerC, to: file)
        var (status, answer) = try reload()
        #expect(status == 0 && answer.contains("a: added 127.0.0.1:\(e3.port); order") && answer.contains("added c"), "\(answer)")
        let portC = try #require(Self.port(of: "c", in: proxy.log), "\(proxy.log)")
        let loadC = EchoLoad(port: portC)
        #expect(await eventually { try! runProxyBinary(["ctl", "-control", control, "show", "backends"]).output.contains("listener c on 127.0.0.1:\(portC)") })
        try await Task.sleep(for: .milliseconds(500))

        // 2. Listener b removed: it stops accepting; its held connection goes on.
        let (servedB, failedB) = await loadB.stop()
        #expect(failedB.isEmpty && servedB > 0, "b: \(servedB) served, failed: \(failedB.prefix(3))")
        try Self.write(head + listenerA([e2, e1, e3]) + listenerC, to: file)
        (status, answer) = try reload()
        #expect(status == 0 && answer.contains("removed b"), "\(answer)")
        #expect(throws: (any Error).self) { let refused = try TestSocket.connect(port: portB, timeout: 2); refused.close() }
        try heldB.send("i")
        #expect(try heldB.receive(exactly: 1) == Array("i".utf8), "\(proxy.log)")

        // 3. Settings of a changed: it starts anew on the same sockets; the old one finishes.
        try Self.write(head + listenerA([e2, e1, e3], extra: "    timeout: 3s\n    idle-timeout: 10m\n") + listenerC, to: file)
        (status, answer) = try reload()
        #expect(status == 0 && answer.contains("restarted a"), "\(answer)")
        #expect(Self.port(of: "a", in: proxy.log) == portA, "\(proxy.log)")
        try await Task.sleep(for: .milliseconds(500))
        try heldA.send("j")
        #expect(try heldA.receive(exactly: 1) == Array("j".utf8), "\(proxy.log)")

        // 4. A broken file changes nothing, and says why (by SIGHUP too).
        let before = try runProxyBinary(["ctl", "-control", control, "show", "backends"]).output
        try Self.write(head + listenerA([e2, e1, e3]) + "    maxconn: lots\n" + listenerC, to: file)
        (status, answer) = try reload()
        #expect(status == 1 && answer.contains("tf.yaml:") && answer.contains("key \"maxconn\"") && answer.contains("nothing changed"), "\(answer)")
        proxy.signal(SIGHUP)
        #expect(await proxy.logShows("reload refused"), "\(proxy.log)")
        let after = try runProxyBinary(["ctl", "-control", control, "show", "backends"]).output
        #expect(before.split(separator: "\n").map { $0.prefix(20) } == after.split(separator: "\n").map { $0.prefix(20) }, "\(before)\n---\n\(after)")
        try await Task.sleep(for: .milliseconds(300))

        let (servedA, failedA) = await loadA.stop()
        let (servedC, failedC) = await loadC.stop()
        #expect(failedA.isEmpty, "a: \(failedA.count) clients failed: \(failedA.prefix(3))")
        #expect(failedC.isEmpty, "c: \(failedC.count) clients failed: \(failedC.prefix(3))")
        #expect(servedA > 20 && servedC > 5, "a \(servedA), c \(servedC)")
        // The held connections still relay, and the proxy exits cleanly with them open.
        try heldA.send("k")
        #expect(try heldA.receive(exactly: 1) == Array("k".utf8))
        heldA.close()
        heldB.close()
        proxy.signal(SIGTERM)
        #expect(await eventually(timeout: .seconds(20)) { !proxy.process.isRunning }, "\(proxy.log)")
        #expect(proxy.waitForExit(timeout: 1) == 0, "\(proxy.log)")
    }

    /// Reloads run one at a time; one that fails in part is retried by the next; listeners
    /// trading ports both serve afterwards.
    @Test func reloadsAreOneAtATimeAndRetryWhatFailed() async throws {
        let directory = try TemporaryDirectory()
        let control = directory.file("control.sock")
        let file = directory.file("tf.yaml")
        let (x, y) = (try TestServer.naming("x"), try TestServer.naming("y"))
        let e = try TestServer.echo(idleLimit: 60)
        // Two ports of our own choosing, free now (the kernel's picks, released).
        let blockers = (try TestServer.naming("p"), try TestServer.naming("q"))
        let (p, q) = (blockers.0.port, blockers.1.port)
        blockers.0.stop()
        blockers.1.stop()
        func listener(_ name: String, _ port: Int, _ backend: TestServer, extra: String = "") -> String {
            "  \(name):\n    listen: 127.0.0.1:\(port)\n    backends: [127.0.0.1:\(backend.port)]\n\(extra)"
        }
        let head = "control: \(control)\nlisteners:\n"
        try Self.write(head + listener("a", p, x) + listener("b", q, y), to: file)
        let proxy = try ProxyProcess(["-config", file])
        defer { proxy.stop() }
        #expect(await proxy.logShows("control socket at"), "\(proxy.log)")
        #expect(try TestSocket.backendName(viaProxyAt: p) == "x")

        // Trading ports: both stop accepting first, then both bind.
        try Self.write(head + listener("a", q, x) + listener("b", p, y), to: file)
        var (status, answer) = try runProxyBinary(["ctl", "-control", control, "reload"])
        #expect(status == 0 && answer.contains("restarted a") && answer.contains("restarted b"), "\(answer)")
        #expect(try TestSocket.backendName(viaProxyAt: q) == "x" && TestSocket.backendName(viaProxyAt: p) == "y", "\(proxy.log)")

        // A listener whose port is taken is not added; the next reload adds it once it is free.
        let squatter = try TestServer.naming("squatter")
        try Self.write(head + listener("a", q, x) + listener("b", p, y) + listener("c", squatter.port, x), to: file)
        (status, answer) = try runProxyBinary(["ctl", "-control", control, "reload"])
        #expect(status == 1 && answer.contains("in part") && answer.contains("127.0.0.1:\(squatter.port)"), "\(answer)")
        let port = squatter.port
        squatter.stop()
        (status, answer) = try runProxyBinary(["ctl", "-control", control, "reload"])
        #expect(status == 0 && answer.contains("added c"), "\(answer)")
        #expect(try TestSocket.backendName(viaProxyAt: port) == "x")

        // Renamed on the same port, under load: the new name serves the old one's sockets.
        let load = EchoLoad(port: q)
        try await Task.sleep(for: .milliseconds(200))
        try Self.write(head + listener("a2", q, e) + listener("b", p, y) + listener("c", port, x), to: file)
        (status, answer) = try runProxyBinary(["ctl", "-control", control, "reload"])
        #expect(status == 0 && answer.contains("renamed a to a2"), "\(answer)")
        try await Task.sleep(for: .milliseconds(300))
        let (served, failed) = await load.stop()
        #expect(failed.isEmpty && served > 5, "\(served) served, failed: \(failed.prefix(3))")

        // Two reloads at once (SIGHUP and ctl), each restarting b: one after the other, so that
        // exactly one b runs; once b is removed its port refuses.
        try Self.write(head + listener("a2", q, e) + listener("b", p, y, extra: "    timeout: 2s\n") + listener("c", port, x), to: file)
        proxy.signal(SIGHUP)
        (status, answer) = try runProxyBinary(["ctl", "-control", control, "reload"])
        #expect(status == 0, "\(answer)")
        #expect(await proxy.logShows("reloaded \(file): restarted b"), "\(proxy.log)")
        try Self.write(head + listener("a2", q, e) + listener("c", port, x), to: file)
        (status, answer) = try runProxyBinary(["ctl", "-control", control, "reload"])
        #expect(status == 0 && answer.contains("removed b"), "\(answer)")
        #expect(throws: (any Error).self, "a listener on \(p) is still accepting: \(proxy.log)") {
            let refused = try TestSocket.connect(port: p, timeout: 2)
            refused.close()
        }
    }

    @Test func reloadWithoutAFileIsRefused() throws {
        let directory = try TemporaryDirectory()
        let control = directory.file("control.sock")
        let backend = try TestServer.naming("a")
        let proxy = try ProxyProcess(["-control", control, "127.0.0.1:0", "127.0.0.1:\(backend.port)"])
        defer { proxy.stop() }
        let (status, answer) = try runProxyBinary(["ctl", "-control", control, "reload"])
        #expect(status == 1 && answer.contains("nothing to reload: this process was started without -config"), "\(answer)")
    }
}
