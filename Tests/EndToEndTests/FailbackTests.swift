import Foundation
import Testing
import TestSupport

/// Failback policies, closing connections on failback, and queueing clients, with the binary.
@Suite struct FailbackTests {
    @Test func holdKeepsARecoveredBackendOutForAWhileAndLongerWhenItFlaps() throws {
        let primaryPort = try refusingPort()
        let replica = try TestServer.naming("replica")
        let proxy = try ProxyProcess([
            "-failback", "hold", "-failback-delay", "500ms", "-probe-delay", "50ms",
            "127.0.0.1:0", "127.0.0.1:\(primaryPort)", "127.0.0.1:\(replica.port)",
        ])
        defer { proxy.stop() }
        #expect(try TestSocket.backendName(viaProxyAt: proxy.port) == "replica")

        var primary = try TestServer.naming("primary", port: primaryPort)
        #expect(proxy.waitForLog("is back after"))
        #expect(proxy.log.contains("held out of rotation for 500ms (hold-down)"), "\(proxy.log)")
        #expect(try TestSocket.backendName(viaProxyAt: proxy.port) == "replica")  // still held
        #expect(proxy.waitForLog("back in rotation: its hold-down time of 500ms passed"))
        #expect(try TestSocket.backendName(viaProxyAt: proxy.port) == "primary")

        // It flaps: down again soon after its return, so the next hold is twice as long.
        primary.stop()
        #expect(try TestSocket.backendName(viaProxyAt: proxy.port) == "replica")
        primary = try TestServer.naming("primary", port: primaryPort)
        defer { primary.stop() }
        #expect(proxy.waitForLog("held out of rotation for 1s (hold-down)"), "\(proxy.log)")
    }

    @Test func manualKeepsTheBackendOutUntilAnOperatorAllowsItAcrossRestarts() throws {
        let directory = try TemporaryDirectory()
        let stateFile = directory.file("failback.state")
        let control = directory.file("control.sock")
        let primaryPort = try refusingPort()
        let replica = try TestServer.naming("replica")
        let arguments = [
            "-failback", "manual", "-state-file", stateFile, "-probe-delay", "50ms", "-control", control,
            "127.0.0.1:0", "127.0.0.1:\(primaryPort)", "127.0.0.1:\(replica.port)",
        ]
        var proxy = try ProxyProcess(arguments)
        #expect(try TestSocket.backendName(viaProxyAt: proxy.port) == "replica")
        let primary = try TestServer.naming("primary", port: primaryPort)
        defer { primary.stop() }
        #expect(proxy.waitForLog("held out of rotation until an operator allows it back"))
        #expect(try TestSocket.backendName(viaProxyAt: proxy.port) == "replica")
        let saved = try String(contentsOfFile: stateFile, encoding: .utf8)
        #expect(saved.contains("held 127.0.0.1:\(primaryPort)\n"), "\(saved)")

        // A restart keeps the decision.
        proxy.stop()
        proxy = try ProxyProcess(arguments)
        defer { proxy.stop() }
        #expect(proxy.log.contains("backend 127.0.0.1:\(primaryPort) stays held out of rotation"), "\(proxy.log)")
        #expect(try TestSocket.backendName(viaProxyAt: proxy.port) == "replica")
        let (_, shown) = try runProxyBinary(["ctl", "-control", control, "show", "backends"])
        #expect(shown.contains("up,held"), "\(shown)")

        // The operator allows it back.
        let (status, answer) = try runProxyBinary(["ctl", "-control", control, "failback", "127.0.0.1:\(primaryPort)"])
        #expect(status == 0, "\(answer)")
        #expect(answer.contains("is back in rotation"))
        #expect(try TestSocket.backendName(viaProxyAt: proxy.port) == "primary")
        #expect(!(try String(contentsOfFile: stateFile, encoding: .utf8)).contains("held 127.0.0.1"))
    }

    /// With nothing to fail away to, `manual` holds nothing: the one backend is used once back.
    @Test func manualDoesNotHoldTheLastBackendStanding() throws {
        let port = try refusingPort()
        let proxy = try ProxyProcess(["-failback", "manual", "-probe-delay", "50ms", "127.0.0.1:0", "127.0.0.1:\(port)"])
        defer { proxy.stop() }
        #expect(try TestSocket.backendName(viaProxyAt: proxy.port) == "")  // closed: nothing up
        let backend = try TestServer.naming("only", port: port)
        defer { backend.stop() }
        #expect(proxy.waitForLog("is back after"))
        #expect(!proxy.log.contains("held out of rotation"))
        #expect(try TestSocket.backendName(viaProxyAt: proxy.port) == "only")
    }

    @Test func aBadStateFileStopsTheStart() throws {
        let directory = try TemporaryDirectory()
        let stateFile = directory.file("bad.state")
        try "held nonsense\n".write(toFile: stateFile, atomically: true, encoding: .utf8)
        let (status, output) = try runProxyBinary(["-failback", "manual", "-state-file", stateFile, "127.0.0.1:0", "127.0.0.1:1"])
        #expect(status == 1)
        #expect(output.contains("line 1: expected \"held ADDRESS:PORT\""), "\(output)")
    }

    @Test func failbackCloseEndsConnectionsLeftOnLowerBackends() throws {
        let primaryPort = try refusingPort()
        let replica = try TestServer.echo()
        let proxy = try ProxyProcess([
            "-failback-close", "-probe-delay", "50ms", "127.0.0.1:0", "127.0.0.1:\(primaryPort)", "127.0.0.1:\(replica.port)",
        ])
        defer { proxy.stop() }
        let client = try TestSocket.connect(port: proxy.port)
        defer { client.close() }
        try client.send("on the replica")
        #expect(try client.receiveString(exactly: 14) == "on the replica")

        let primary = try TestServer.naming("primary", port: primaryPort)
        defer { primary.stop() }
        #expect(proxy.waitForLog("closed 1 connection(s) on backends after 127.0.0.1:\(primaryPort)"), "\(proxy.log)")
        #expect((try? client.receiveToEnd()) != nil)
        #expect(try TestSocket.backendName(viaProxyAt: proxy.port) == "primary")
    }

    @Test func aQueuedClientWaitsForABackendToComeBack() throws {
        let port = try refusingPort()
        let proxy = try ProxyProcess(["-queue-timeout", "5s", "-probe-delay", "50ms", "127.0.0.1:0", "127.0.0.1:\(port)"])
        defer { proxy.stop() }
        let client = try TestSocket.connect(port: proxy.port)
        defer { client.close() }
        try client.send("hello")
        #expect(proxy.waitForLog("it waits up to 5s for one"))
        let backend = try TestServer(port: port) { connection in
            let request = try connection.receive(exactly: 5)
            try connection.send("got \(String(decoding: request, as: UTF8.self))")
        }
        defer { backend.stop() }
        #expect(String(decoding: try client.receiveToEnd(), as: UTF8.self) == "got hello")
    }
}
