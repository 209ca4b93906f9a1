import Foundation
import Testing
import TestSupport
import TCPFallback

/// The greeting gate, the mysql check, active checks and closing sessions on down, against
/// fake MySQL servers on 127.0.0.1.
@Suite struct MySQLFailoverTests {
    /// Connects through the proxy and reads the greeting it passes on.
    static func greeting(viaProxyAt port: Int) throws -> [UInt8] {
        let client = try TestSocket.connect(port: port)
        defer { client.close() }
        let header = try client.receive(exactly: 4)
        guard header.count == 4 else { return header }
        let length = Int(header[0]) | Int(header[1]) << 8 | Int(header[2]) << 16
        return header + (try client.receive(exactly: length))
    }

    @Test func theGateSkipsErrorPacketsAndSilentServersAndPassesTheGreetingUnchanged() throws {
        let busy = try FakeMySQLServer(name: "busy", mode: .tooManyConnections)
        let hung = try FakeMySQLServer(name: "hung", mode: .silent)
        let good = try FakeMySQLServer(name: "good")
        let proxy = try ProxyProcess([
            "-check", "mysql", "-timeout", "1s", "127.0.0.1:0",
            "127.0.0.1:\(busy.port)", "127.0.0.1:\(hung.port)", "127.0.0.1:\(good.port)",
        ])
        defer { proxy.stop() }
        let started = Date()
        #expect(try Self.greeting(viaProxyAt: proxy.port) == good.greeting)
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(proxy.waitForLog("backend 127.0.0.1:\(busy.port) is down: greeting: server error 1040: Too many connections"))
        #expect(proxy.waitForLog("backend 127.0.0.1:\(hung.port) is down: greeting: nothing within 1s"))
        // The next client goes straight to the good server.
        #expect(try Self.greeting(viaProxyAt: proxy.port) == good.greeting)
    }

    @Test func withoutTheGateAClientGetsTheErrorPacket() throws {
        let busy = try FakeMySQLServer(name: "busy", mode: .tooManyConnections)
        let good = try FakeMySQLServer(name: "good")
        let proxy = try ProxyProcess(["127.0.0.1:0", "127.0.0.1:\(busy.port)", "127.0.0.1:\(good.port)"])
        defer { proxy.stop() }
        // The original's behaviour: the connect succeeded, so the client is stuck with the error.
        #expect(try Self.greeting(viaProxyAt: proxy.port)[4] == 0xFF)
    }

    @Test func activeMySQLChecksFollowTheServerAndLogInPolitely() throws {
        let primary = try FakeMySQLServer(name: "primary")
        let replica = try FakeMySQLServer(name: "replica")
        let proxy = try ProxyProcess([
            "-check", "mysql", "-check-interval", "100ms", "-rise", "2", "-fall", "2", "-timeout", "3s",
            "127.0.0.1:0", "127.0.0.1:\(primary.port)", "127.0.0.1:\(replica.port)",
        ])
        defer { proxy.stop() }
        #expect(try Self.greeting(viaProxyAt: proxy.port) == primary.greeting)

        primary.mode = .tooManyConnections
        #expect(
            proxy.waitForLog("backend 127.0.0.1:\(primary.port) is down: server error 1040: Too many connections (2 checks failed"),
            "\(proxy.log)")
        #expect(try Self.greeting(viaProxyAt: proxy.port) == replica.greeting)

        primary.mode = .greet
        #expect(proxy.waitForLog("backend 127.0.0.1:\(primary.port) is back after"))
        #expect(proxy.log.contains("(2 checks passed"))
        #expect(try Self.greeting(viaProxyAt: proxy.port) == primary.greeting)

        // Every check that was greeted logged in and said goodbye, rather than hanging up
        // mid-handshake (which servers count towards blocking the host).
        let handshakes = replica.handshakes
        #expect(handshakes.logins >= 3)
        #expect(handshakes.quits >= handshakes.logins - 1)
    }

    @Test(arguments: [true, false])
    func sessionsOnABackendThatGoesDownAreClosed(closeOnDown: Bool) throws {
        let primary = try FakeMySQLServer(name: "primary")
        let replica = try FakeMySQLServer(name: "replica")
        let proxy = try ProxyProcess([
            "-check", "mysql", "-check-interval", "100ms", "-close-on-down=\(closeOnDown)", "-timeout", "3s",
            "127.0.0.1:0", "127.0.0.1:\(primary.port)", "127.0.0.1:\(replica.port)",
        ])
        defer { proxy.stop() }
        let client = try TestSocket.connect(port: proxy.port, timeout: 5)
        defer { client.close() }
        #expect(try client.receive(exactly: primary.greeting.count) == primary.greeting)

        primary.mode = .tooManyConnections  // new connections fail; this one would go on
        #expect(proxy.waitForLog("backend 127.0.0.1:\(primary.port) is down"))
        if closeOnDown {
            #expect(proxy.waitForLog("closed 1 connection(s) to 127.0.0.1:\(primary.port)"))
            #expect((try? client.receiveToEnd()) != nil)  // ended, not hanging
        } else {
            let ping = FakeMySQLServer.packet([3] + Array("SELECT 1".utf8), sequence: 0)
            try client.send(ping)
            #expect(try client.receive(exactly: ping.count) == ping)
        }
    }
}
