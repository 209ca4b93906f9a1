import Foundation
import Testing
import TCPFallback
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The built binary as an operator runs it: exit statuses, signals, log files, resources.
@Suite struct ProcessTests {
    @Test func badCommandLinesExitWithStatusTwoAndOneLine() throws {
        for (arguments, message) in [
            (["127.0.0.1:0"], "at least one backend is needed"),
            (["-timeout=fast", "127.0.0.1:0", "127.0.0.1:1"], "invalid duration \"fast\""),
            (["127.0.0.1:0", "foo"], "invalid backend address \"foo\": missing port"),
            (["-nosuchflag", "127.0.0.1:0", "127.0.0.1:1"], "nosuchflag"),
        ] {
            let (status, output) = try runProxyBinary(arguments)
            #expect(status == 2, "\(arguments)")
            #expect(output.contains(message), "\(output)")
            #expect(output.contains("--help"))
        }
    }

    @Test func helpAndVersion() throws {
        let (status, help) = try runProxyBinary(["-help"])
        #expect(status == 0)
        #expect(help.contains("--probe-delay <duration>"))
        let (versionStatus, version) = try runProxyBinary(["--version"])
        #expect(versionStatus == 0)
        #expect(version.trimmingCharacters(in: .whitespacesAndNewlines) == TCPFallbackVersion.current)
    }

    @Test func aPortInUseExitsWithStatusOne() throws {
        let taken = try TestServer(accepting: false)
        let (status, output) = try runProxyBinary(["127.0.0.1:\(taken.port)", "127.0.0.1:1"])
        #expect(status == 1)
        #expect(output.contains("cannot listen on 127.0.0.1:\(taken.port): address already in use"), "\(output)")
    }

    @Test func anUnwritableLogFileExitsWithStatusOne() throws {
        let (status, output) = try runProxyBinary(["-logfile=/nonexistent-dir/x.log", "127.0.0.1:0", "127.0.0.1:1"])
        #expect(status == 1)
        #expect(output.contains("cannot open log file \"/nonexistent-dir/x.log\": no such file or directory"), "\(output)")
    }

    @Test func sigtermStopsAcceptingLetsOpenConnectionsFinishAndExitsZero() throws {
        let backend = try TestServer.echo()
        let proxy = try ProxyProcess(["-shutdown-grace=5s", "127.0.0.1:0", "127.0.0.1:\(backend.port)"])
        let client = try TestSocket.connect(port: proxy.port)
        try client.send("before")
        #expect(try client.receiveString(exactly: 6) == "before")
        proxy.signal(SIGTERM)
        #expect(proxy.waitForLog("stopped accepting"))
        // New clients are refused; the open one still works.
        #expect(throws: TestSocket.SocketError.self) { try TestSocket.connect(port: proxy.port) }
        try client.send("after")
        #expect(try client.receiveString(exactly: 5) == "after")
        client.shutdownWrite()
        #expect(try client.receiveToEnd().isEmpty)
        #expect(proxy.waitForExit() == 0)
        #expect(proxy.log.contains("stopped"))
    }

    @Test func theGracePeriodEndsWithOpenConnectionsClosed() throws {
        let backend = try TestServer.echo()
        let proxy = try ProxyProcess(["-shutdown-grace=200ms", "127.0.0.1:0", "127.0.0.1:\(backend.port)"])
        let client = try TestSocket.connect(port: proxy.port)
        try client.send("x")
        _ = try client.receive(exactly: 1)
        proxy.signal(SIGINT)
        #expect(proxy.waitForExit(timeout: 5) == 0)
        #expect(proxy.log.contains("closing 1 connection(s) still open after the grace period"))
        _ = try? client.receiveToEnd()
    }

    @Test func sighupReopensTheLogFileAndSigusr1LogsStats() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tcp-fallback-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let logPath = directory.appendingPathComponent("proxy.log").path
        let backend = try TestServer.naming("b")
        let proxy = try ProxyProcess(
            ["-logfile", logPath, "-stats=0", "127.0.0.1:0", "127.0.0.1:\(backend.port)"], waitForListening: false)
        defer { proxy.stop() }
        #expect(await eventually { ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").contains("listening on") })
        let attributes = try FileManager.default.attributesOfItem(atPath: logPath)
        #expect((attributes[.posixPermissions] as? Int) == 0o640)

        // Rotate: move the file away, SIGHUP, and the proxy writes to a new file at the path.
        try FileManager.default.moveItem(atPath: logPath, toPath: logPath + ".1")
        proxy.signal(SIGHUP)
        #expect(await eventually { FileManager.default.fileExists(atPath: logPath) })
        proxy.signal(SIGUSR1)
        #expect(await eventually {
            ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").contains("stats backend 127.0.0.1:\(backend.port): up")
        })
        #expect(proxy.process.isRunning)
        // The old descriptor is closed: only the new log file is open.
        let descriptors = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(proxy.pid)/fd")
        let logFiles = descriptors.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(proxy.pid)/fd/\($0)") }
            .filter { $0.hasPrefix(directory.path) }
        #expect(logFiles == [logPath])
    }

    @Test func sighupWithoutALogFileIsHarmless() throws {
        let backend = try TestServer.naming("b")
        let proxy = try ProxyProcess(["127.0.0.1:0", "127.0.0.1:\(backend.port)"])
        proxy.signal(SIGHUP)
        usleep(200_000)
        #expect(proxy.process.isRunning)
        #expect(try TestSocket.backendName(viaProxyAt: proxy.port) == "b")
    }

    /// 2,000 connections opened and closed leave the descriptor count where it started.
    @Test func twoThousandConnectionsLeakNoDescriptor() async throws {
        let backend = try TestServer.echo()
        let proxy = try ProxyProcess(["-maxthreads=2", "127.0.0.1:0", "127.0.0.1:\(backend.port)"])
        // Warm up first: the runtime opens a few descriptors of its own lazily (timers of the
        // first sleeping task, for one), and those are not the proxy's to close.
        for _ in 0..<10 {
            let client = try TestSocket.connect(port: proxy.port)
            try client.send("warm")
            _ = try client.receive(exactly: 4)
            client.close()
        }
        try await Task.sleep(for: .milliseconds(500))
        let before = proxy.openDescriptors
        for round in 0..<40 {
            var clients: [TestSocket] = []
            for _ in 0..<50 {
                clients.append(try TestSocket.connect(port: proxy.port))
            }
            for (index, client) in clients.enumerated() {
                try client.send("ping")
                #expect(try client.receiveString(exactly: 4) == "ping")
                // Mix clean closes and resets.
                if (index + round) % 5 == 0 { client.reset() } else { client.close() }
            }
        }
        let settled = await eventually(timeout: .seconds(20)) { proxy.openDescriptors == before }
        #expect(settled, "before \(before), after \(proxy.openDescriptors): \(proxy.descriptorTargets)")
    }

    /// A client that does not read: the proxy stops reading from the backend instead of
    /// buffering what it sends.
    @Test func aSlowReaderDoesNotGrowTheProxysMemory() async throws {
        let sent = Checksum.Box()
        let backend = try TestServer { connection in
            var random = PseudoRandomBytes(seed: 3)
            let chunk = random.next(65536)
            var total = Checksum()
            // Write until blocked for good (the send timeout ends it) or the test closes us.
            while (try? connection.send(chunk)) != nil {
                total.add([0])  // count chunks cheaply
                sent.set(total)
            }
        }
        let proxy = try ProxyProcess(["127.0.0.1:0", "127.0.0.1:\(backend.port)"])
        let baseline = proxy.residentBytes
        let client = try TestSocket.connect(port: proxy.port)
        defer { client.close() }
        try await Task.sleep(for: .seconds(2))
        let chunks = sent.value?.count ?? 0
        let growth = proxy.residentBytes - baseline
        // Kernel buffers on three sockets hold some megabytes; the proxy itself holds at most
        // its write buffer's high watermark plus one read.
        #expect(chunks * 65536 < 64 * 1024 * 1024, "the backend could send \(chunks * 64) KiB")
        #expect(growth < 24 * 1024 * 1024, "the proxy grew by \(growth / 1024) KiB")
        // And the stream is intact once the client reads.
        let head = try client.receive(exactly: 65536 * 4)
        var random = PseudoRandomBytes(seed: 3)
        let chunk = random.next(65536)
        #expect(head == chunk + chunk + chunk + chunk)
    }

    /// Out of descriptors: accept errors are logged at most once a second, no backend is
    /// marked down, and service resumes once descriptors are free again.
    @Test func runningOutOfDescriptorsIsSurvived() async throws {
        let backend = try TestServer.echo()
        // A low descriptor limit, set by the shell before it becomes the proxy.
        let proxy = try ProxyProcess([
            "-c", "ulimit -n 64 && exec \"$0\" \"$@\"", ProxyProcess.binary.path,
            "-maxthreads=1", "127.0.0.1:0", "127.0.0.1:\(backend.port)",
        ], executable: URL(fileURLWithPath: "/bin/sh"))
        var clients: [TestSocket] = []
        for _ in 0..<60 {
            if let client = try? TestSocket.connect(port: proxy.port, timeout: 2) { clients.append(client) }
        }
        #expect(proxy.waitForLog("accept failed: too many open files"))
        try await Task.sleep(for: .milliseconds(2500))
        // At most a line a second, however often accept fails.
        let times = proxy.log.split(separator: "\n").filter { $0.contains("accept failed") }.compactMap { line -> Double? in
            // 2026-11-22T01:15:12.721Z: seconds of the day with milliseconds
            let clock = line.split(separator: "T")[1].prefix(12).split(separator: ":")
            guard clock.count == 3, let h = Double(clock[0]), let m = Double(clock[1]), let s = Double(clock[2]) else { return nil }
            return h * 3600 + m * 60 + s
        }
        #expect(times.count >= 2, "\(proxy.log)")
        let gaps = zip(times.dropFirst(), times).map { $0 - $1 }
        #expect(gaps.allSatisfy { $0 >= 0.99 }, "accept error lines \(gaps) seconds apart")
        #expect(!proxy.log.contains("is down"), "a backend was marked down for a local error")
        for client in clients { client.close() }
        clients.removeAll()
        // Served again once descriptors are free.
        #expect(await eventually(timeout: .seconds(5)) {
            guard let client = try? TestSocket.connect(port: proxy.port, timeout: 2) else { return false }
            defer { client.close() }
            guard (try? client.send("ok")) != nil else { return false }
            return (try? client.receiveString(exactly: 2)) == "ok"
        })
        #expect(proxy.process.isRunning)
    }

    @Test func debugLogsALinePerConnectionAndStatsArePeriodic() throws {
        let backend = try TestServer.echo()
        let proxy = try ProxyProcess(["-debug", "-stats=200ms", "127.0.0.1:0", "127.0.0.1:\(backend.port)"])
        let client = try TestSocket.connect(port: proxy.port)
        try client.send("12345")
        _ = try client.receive(exactly: 5)
        client.shutdownWrite()
        _ = try client.receiveToEnd()
        client.close()
        #expect(proxy.waitForLog("via 127.0.0.1:\(backend.port) ended after"))
        #expect(proxy.log.contains("5 bytes from client, 5 bytes to client, closed"))
        #expect(proxy.waitForLog("stats backend 127.0.0.1:\(backend.port): up, downtime 0s, 1 connections (0 active), 5 bytes from client"))
    }
}
