import Foundation
import Testing
import TestSupport
import TCPFallback

/// Which backend a client lands on, with real sockets on 127.0.0.1.
@Suite struct FailoverTests {
    @Test func clientsGoToTheFirstBackend() async throws {
        let first = try TestServer.naming("first")
        let second = try TestServer.naming("second")
        try await withProxy(backends: [first.port, second.port]) { (_, port) async throws in
            for _ in 0..<5 {
                #expect(try TestSocket.backendName(viaProxyAt: port) == "first")
            }
        }
        #expect(second.accepted == 0)
    }

    @Test func aRefusingBackendIsSkippedWithoutTheClientNoticing() async throws {
        let dead = try refusingPort()
        let second = try TestServer.naming("second")
        let log = LogCapture()
        try await withProxy(backends: [dead, second.port], log: log) { (proxy, port) async throws in
            #expect(try TestSocket.backendName(viaProxyAt: port) == "second")
            #expect(await eventually { !proxy.registry.snapshot.isUp(proxy.registry.backends[0]) })
            #expect(try TestSocket.backendName(viaProxyAt: port) == "second")
            #expect(proxy.registry.backends[0].counters.values.connectErrors == 1)
        }
        #expect(log.contains("backend 127.0.0.1:\(dead) is down: connection refused"))
    }

    @Test func aHungBackendTimesOutAndTheClientLandsOnTheNext() async throws {
        let hung = try HungServer()
        let second = try TestServer.naming("second")
        let log = LogCapture()
        try await withProxy(backends: [hung.port, second.port], timeout: .milliseconds(300), log: log) { (proxy, port) async throws in
            let started = ContinuousClock.now
            #expect(try TestSocket.backendName(viaProxyAt: port) == "second")
            let elapsed = ContinuousClock.now - started
            #expect(elapsed >= .milliseconds(280), "gave up after \(elapsed)")
            #expect(elapsed < .seconds(3))
            // Now marked down, the next client does not wait.
            #expect(await eventually { !proxy.registry.snapshot.isUp(proxy.registry.backends[0]) })
            let again = ContinuousClock.now
            #expect(try TestSocket.backendName(viaProxyAt: port) == "second")
            #expect(ContinuousClock.now - again < .milliseconds(250))
        }
        #expect(log.contains("is down: connect timed out after 300ms"))
    }

    @Test func aWaitingDialDoesNotBlockOtherClients() async throws {
        let hung = try HungServer()
        let second = try TestServer.naming("second")
        try await withProxy(backends: [hung.port, second.port], timeout: .seconds(2)) { (proxy, port) async throws in
            // The first client waits for the hung backend's timeout...
            let slow = try TestSocket.connect(port: port)
            defer { slow.close() }
            try await Task.sleep(for: .milliseconds(100))
            // ...while accepting goes on: a second client is accepted at once.
            let other = try TestSocket.connect(port: port, timeout: 5)
            defer { other.close() }
            #expect(await eventually(timeout: .milliseconds(1000)) { proxy.counters.values.acceptedConnections == 2 })
        }
    }

    @Test func whenAllAreDownTheClientIsClosed() async throws {
        let dead1 = try refusingPort()
        let dead2 = try refusingPort()
        let log = LogCapture()
        try await withProxy(backends: [dead1, dead2], log: log) { (proxy, port) async throws in
            let client = try TestSocket.connect(port: port)
            #expect(try client.receiveToEnd().isEmpty)
            #expect(await eventually { proxy.registry.snapshot.backends.allSatisfy { !$0.isUp } })
            // Down backends are still tried, in order, before a client is turned away.
            let revived = try TestServer.naming("revived", port: dead2)
            #expect(try TestSocket.backendName(viaProxyAt: port) == "revived")
            #expect(await eventually { proxy.registry.snapshot.isUp(proxy.registry.backends[1]) })
            revived.stop()
        }
        #expect(log.contains("no backend available"))
    }

    @Test func aProbeBringsTheBackendBackAndClientsReturnToIt() async throws {
        let clock = ManualClock()
        let firstPort = try refusingPort()
        let second = try TestServer.naming("second")
        let log = LogCapture()
        try await withProxy(backends: [firstPort, second.port], probeDelay: .seconds(30), clock: clock, log: log) { (proxy, port) async throws in
            #expect(try TestSocket.backendName(viaProxyAt: port) == "second")
            #expect(await eventually { clock.sleeperCount == 1 })

            // A probe that finds it still down changes nothing.
            clock.advance(by: .seconds(30))
            #expect(await eventually { clock.sleeperCount == 1 && log.contains("probe of backend 127.0.0.1:\(firstPort) failed") })
            #expect(try TestSocket.backendName(viaProxyAt: port) == "second")

            // Once it listens again, the next probe brings it back.
            let first = try TestServer.naming("first", port: firstPort)
            defer { first.stop() }
            clock.advance(by: .seconds(30))
            #expect(await eventually { proxy.registry.snapshot.isUp(proxy.registry.backends[0]) })
            #expect(try TestSocket.backendName(viaProxyAt: port) == "first")
        }
        #expect(log.contains("backend 127.0.0.1:\(firstPort) is back after 1m0s"))
    }

    /// The same on the real clock, with a short probe delay.
    @Test func probesRunOnTheRealClock() async throws {
        let firstPort = try refusingPort()
        let second = try TestServer.naming("second")
        try await withProxy(backends: [firstPort, second.port], probeDelay: .milliseconds(100)) { (proxy, port) async throws in
            #expect(try TestSocket.backendName(viaProxyAt: port) == "second")
            let first = try TestServer.naming("first", port: firstPort)
            defer { first.stop() }
            #expect(await eventually { proxy.registry.snapshot.isUp(proxy.registry.backends[0]) })
            #expect(try TestSocket.backendName(viaProxyAt: port) == "first")
        }
    }

    /// Host names are resolved when connecting; a listener on ":port" takes IPv4 clients too.
    @Test func hostNameBackendsAndAnAllInterfacesListener() async throws {
        let backend = try TestServer.naming("by-name")
        let configuration = ProxyConfiguration(
            listen: try Endpoint(parsing: ":0", role: .listen),
            backends: [try Endpoint(parsing: "localhost:\(backend.port)", role: .backend)],
            statsInterval: nil, eventLoopThreads: 1, shutdownGrace: .zero)
        let proxy = TCPFallbackProxy(configuration: configuration, logger: LogCapture().logger)
        let address = try await proxy.start()
        #expect(try TestSocket.backendName(viaProxyAt: address.port!) == "by-name")
        await proxy.shutdown(grace: .zero)
    }
}
