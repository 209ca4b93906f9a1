import Foundation
import Synchronization
import Testing
import TestSupport
import TCPFallback

#if canImport(Glibc)
import Glibc
#endif

/// Limits the data path puts on connections: -maxconn, -idle-timeout and TCP keepalive.
@Suite struct ConnectionLimitsTests {
    /// Above -maxconn the proxy stops accepting: the third client waits in the backlog, with
    /// nothing relayed, until one of the first two closes; then it is served.
    @Test func maxconnHoldsClientsInTheBacklogUntilOneCloses() async throws {
        let backend = try TestServer.echo()
        try await withProxy(backends: [backend.port], configure: { $0.maxConnections = 2 }) { (proxy, port) async throws in
            let first = try TestSocket.connect(port: port)
            let second = try TestSocket.connect(port: port)
            for client in [first, second] {
                try client.send("hi")
                #expect(try client.receiveString(exactly: 2) == "hi")
            }
            // The kernel completes the handshake (backlog), but the proxy does not accept it.
            let third = try TestSocket.connect(port: port, timeout: 1)
            defer { third.close() }
            try third.send("3!")
            #expect(await eventually { proxy.counters.values.maxConnectionsReached > 0 })
            #expect(throws: (any Error).self) { try third.receive(max: 2) }  // times out: not served
            #expect(proxy.counters.values.acceptedConnections == 2)
            #expect(proxy.counters.values.openClientConnections == 2)
            first.close()
            // The place freed goes to the waiting client, whose early bytes were kept.
            #expect(try third.receiveString(exactly: 2) == "3!")
            #expect(proxy.counters.values.acceptedConnections == 3)
            second.close()
        }
    }

    /// A connection idle both ways for -idle-timeout is closed; one that keeps talking is not.
    @Test func idleConnectionsAreClosedAndBusyOnesKept() async throws {
        let backend = try TestServer.echo()
        let log = LogCapture()
        try await withProxy(backends: [backend.port], log: log, configure: { $0.idleTimeout = .seconds(1) }) { (proxy, port) async throws in
            let idle = try TestSocket.connect(port: port, timeout: 10)
            defer { idle.close() }
            let busy = try TestSocket.connect(port: port, timeout: 5)
            defer { busy.close() }
            try idle.send("x")
            #expect(try idle.receiveString(exactly: 1) == "x")
            let started = ContinuousClock.now
            // The busy one talks every 100ms for 2.5s (on a thread of its own, so that its
            // pace does not depend on the test's task pool).
            let busyOK = Locked(false)
            let talking = DispatchSemaphore(value: 0)
            Thread {
                var ok = true
                for _ in 0..<25 {
                    ok = ok && (try? busy.send("y")) != nil && (try? busy.receiveString(exactly: 1)) == "y"
                    usleep(100_000)
                }
                busyOK.withLock { $0 = ok }
                talking.signal()
            }.start()
            // The idle one is closed meanwhile (end of stream, not an error), after about 1s.
            #expect(try idle.receiveToEnd().isEmpty)
            let closedAfter = ContinuousClock.now - started
            #expect(closedAfter >= .milliseconds(900) && closedAfter < .seconds(5), "\(closedAfter)")
            talking.wait()
            #expect(busyOK.withLock { $0 }, "the busy connection was cut")
            #expect(log.contains("idle for 1s"), "\(log.all)")
        }
    }

    /// Keepalive is on by default on both sides of a relay (on the backend's once the relay
    /// has run a while: 5s, 200ms here); `ss` shows the kernel's timer.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/ss") || FileManager.default.isExecutableFile(atPath: "/bin/ss")))
    func keepaliveIsOnBothSidesByDefault() async throws {
        let backend = try TestServer.echo()
        try await withProxy(backends: [backend.port], configure: { $0.keepaliveArmingDelay = .milliseconds(200) }) { (proxy, port) async throws in
            #expect(proxy.configuration.keepalive == TCPKeepalive(idle: .seconds(60)))
            let client = try TestSocket.connect(port: port)
            defer { client.close() }
            try client.send("k")
            #expect(try client.receiveString(exactly: 1) == "k")
            // The proxy's end towards the client (source port = listener) and towards the backend.
            let clientSide = try runProcess("/usr/bin/env", ["ss", "-tnoH", "state", "established", "( sport = :\(port) )"]).output
            #expect(clientSide.contains("timer:(keepalive"), "\(clientSide)")
            func backendSide() throws -> String {
                try runProcess("/usr/bin/env", ["ss", "-tnoH", "state", "established", "( dport = :\(backend.port) )"]).output
            }
            #expect(try !backendSide().contains("keepalive"), "armed before the relay ran a while")
            #expect(await eventually { (try? backendSide())?.contains("timer:(keepalive") ?? false })
        }
        // Off with -keepalive 0.
        try await withProxy(backends: [backend.port], configure: { $0.keepalive = nil }) { (_, port) async throws in
            let client = try TestSocket.connect(port: port)
            defer { client.close() }
            try client.send("k")
            #expect(try client.receiveString(exactly: 1) == "k")
            let backendSide = try runProcess("/usr/bin/env", ["ss", "-tnoH", "state", "established", "( sport = :\(port) )"]).output
            #expect(!backendSide.contains("keepalive"), "\(backendSide)")
        }
    }
}
