import Foundation
import Testing
import TestSupport

/// The mysql check must not get the proxy's host blocked by `max_connect_errors`. MariaDB
/// counts handshake errors only for clients on other hosts whose names it resolved, so the
/// server runs in a network namespace of the test's own, reached over a veth link.
@Suite(.serialized, .enabled(if: MariaDBServer.available && TestNetwork.available, "needs root, ip netns and mariadb-server"))
struct MaxConnectErrorsTests {
    /// Runs the proxy with `check` every 50ms for 2 seconds against a server that blocks a host
    /// after 3 handshake errors; returns what a direct client gets afterwards.
    static func connectAfterChecks(_ check: String) throws -> (ok: String?, output: String, checks: Int) {
        let network = try TestNetwork()
        defer { network.remove() }
        let server = try MariaDBServer(serverID: 9, namespace: network.name, host: network.remoteAddress, maxConnectErrors: 3)
        let before = Int(try server.sql("SHOW GLOBAL STATUS LIKE 'Connections'").split(separator: "\t").last ?? "0") ?? 0
        let proxy = try ProxyProcess([
            "-check", check, "-check-interval", "50ms", "-timeout", "1s", "127.0.0.1:0", "\(network.remoteAddress):\(server.port)",
        ])
        usleep(2_000_000)
        proxy.stop()
        let after = Int(try server.sql("SHOW GLOBAL STATUS LIKE 'Connections'").split(separator: "\t").last ?? "0") ?? 0
        let result = mariadbClientOutput(host: network.remoteAddress, port: server.port, "SELECT 'still welcome'")
        server.crash()
        return (result.ok, result.output, after - before)
    }

    @Test func manyMySQLChecksLeaveTheHostWelcome() throws {
        let result = try Self.connectAfterChecks("mysql")
        #expect(result.checks > 10, "only \(result.checks) checks reached the server")
        #expect(result.ok == "still welcome", "\(result.output)")
    }

    /// The control: plain TCP checks (connect, hang up) get the host blocked on the same set-up,
    /// so the test above would notice a check that did the same.
    @Test func plainTCPChecksGetTheHostBlocked() throws {
        let result = try Self.connectAfterChecks("tcp")
        #expect(result.ok == nil)
        #expect(result.output.contains("is blocked because of many connection errors"), "\(result.output)")
    }
}
