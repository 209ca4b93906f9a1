import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The authenticated MySQL check and the roles, in front of real MariaDB servers (Debian
/// mariadb-server): a writer listener follows the writable server wherever it is in the list,
/// refuses writers during a split brain, and a reader listener uses fresh replicas.
@Suite(.serialized, .enabled(if: MariaDBServer.available, "mariadb-server is not installed; Scripts/test.sh installs it"))
struct MySQLRolesTests {
    /// A primary and a read-only replica of it, each with the check's user.
    struct Pair {
        let primary: MariaDBServer
        let replica: MariaDBServer
        let directory: TemporaryDirectory
        let passwordFile: String

        init(grant: String = "SLAVE MONITOR", password: String = "monitor-pw") throws {
            primary = try MariaDBServer(serverID: 1)
            replica = try MariaDBServer(serverID: 2)
            for server in [primary, replica] {
                try server.sql(
                    "SET sql_log_bin = 0; CREATE USER 'monitor'@'%' IDENTIFIED BY 'monitor-pw'; GRANT \(grant) ON *.* TO 'monitor'@'%';")
            }
            try primary.sql("CREATE DATABASE shop; CREATE TABLE shop.orders (id INT PRIMARY KEY);")
            try replica.replicate(from: primary)
            try replica.sql("SET GLOBAL read_only = 1")
            directory = try TemporaryDirectory()
            passwordFile = directory.file("check-password")
            writeFile(password + "\n", to: passwordFile)
        }

        /// A proxy with the check's login, the replica listed first.
        func proxy(_ extra: [String], backends: [MariaDBServer]? = nil) throws -> ProxyProcess {
            let order = backends ?? [replica, primary]
            return try ProxyProcess(
                ["-check", "mysql", "-check-user", "monitor", "-check-password-file", passwordFile, "-check-interval", "200ms", "-timeout", "1s"]
                    + extra + ["127.0.0.1:0"] + order.map { "127.0.0.1:\($0.port)" })
        }
    }

    static func serverID(through proxy: ProxyProcess) -> String? { mariadbClient(port: proxy.port, "SELECT @@server_id", timeout: 5) }

    /// The proxy's /metrics page.
    static func metrics(_ proxy: ProxyProcess) throws -> String {
        #expect(proxy.waitForLog("/metrics"))
        let line = try #require(proxy.log.split(separator: "\n").first { $0.contains("metrics at ") })
        let port = try #require(Int(line.split(separator: ":").last!.split(separator: "/").first!))
        let socket = try TestSocket.connect(port: port)
        defer { socket.close() }
        try socket.send("GET /metrics HTTP/1.0\r\n\r\n")
        return String(decoding: try socket.receiveToEnd(), as: UTF8.self)
    }

    @Test func aWriterListenerFollowsThePrimaryWhereverItIsAndAPromotion() throws {
        let pair = try Pair()
        let control = pair.directory.file("control.sock")
        let proxy = try pair.proxy(["-role", "writer", "-control", control])
        // The replica is first in the list, but read-only: writers go to the primary.
        #expect(waitFor { Self.serverID(through: proxy) == "1" })
        #expect(mariadbClient(port: proxy.port, "INSERT INTO shop.orders VALUES (1)") != nil)
        #expect(proxy.waitForLog("backend 127.0.0.1:\(pair.primary.port) is writable"))
        #expect(proxy.waitForLog("backend 127.0.0.1:\(pair.replica.port) is read-only, replicating"))
        let (_, backends) = try runProxyBinary(["ctl", "-control", control, "show", "backends"])
        #expect(backends.contains("writable"), "\(backends)")

        // A client that stays connected to the primary through the promotion.
        let held = try TestSocket.connect(port: proxy.port)
        defer { held.close() }
        _ = try held.receive()  // the greeting

        // Promotion, as an operator or a tool does it: demote the primary, promote the replica.
        try pair.primary.sql("SET GLOBAL read_only = 1")
        try pair.replica.sql("STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0")
        #expect(waitFor { Self.serverID(through: proxy) == "2" })
        #expect(mariadbClient(port: proxy.port, "INSERT INTO shop.orders VALUES (2)") != nil)
        // The demoted primary's sessions were closed, so their clients reconnect to the writer.
        #expect(proxy.waitForLog("which is no longer writable"))
        #expect((try? held.receiveToEnd()) != nil)
    }

    @Test func twoWritableServersAreASplitBrainAndWritersAreRefused() throws {
        let pair = try Pair()
        let control = pair.directory.file("control.sock")
        let proxy = try pair.proxy(["-role", "writer", "-control", control, "-metrics", "127.0.0.1:0"])
        #expect(waitFor { Self.serverID(through: proxy) == "1" })

        // The old replica becomes writable while the primary still is.
        try pair.replica.sql("SET GLOBAL read_only = 0")
        #expect(proxy.waitForLog("split brain: 127.0.0.1:\(pair.replica.port) and 127.0.0.1:\(pair.primary.port) are all writable"))
        #expect(waitFor { Self.serverID(through: proxy) == nil })
        let (_, backends) = try runProxyBinary(["ctl", "-control", control, "show", "backends"])
        #expect(backends.contains("split brain"), "\(backends)")
        let page = try Self.metrics(proxy)
        #expect(page.contains("tcp_fallback_split_brain 1"), "\(page)")
        // Every refused client is not a log line: one a second at most, with a count.
        let before = proxy.log.split(separator: "\n").filter { $0.contains("closing it: split brain") }.count
        let start = Date()
        for _ in 0..<20 { _ = try? TestSocket.connect(port: proxy.port).receiveToEnd() }
        let elapsed = Date().timeIntervalSince(start)
        let after = proxy.log.split(separator: "\n").filter { $0.contains("closing it: split brain") }.count
        #expect(after - before <= Int(elapsed) + 2, "\(after - before) lines in \(elapsed)s")

        // One of them stops taking writes: writers go to the other again.
        try pair.primary.sql("SET GLOBAL read_only = 1")
        #expect(proxy.waitForLog("split brain over; writers go to 127.0.0.1:\(pair.replica.port)"))
        #expect(waitFor { Self.serverID(through: proxy) == "2" })
    }

    @Test func withSplitBrainFirstTheFirstWritableInOrderGetsWriters() throws {
        let pair = try Pair()
        try pair.replica.sql("SET GLOBAL read_only = 0")
        let proxy = try pair.proxy(["-role", "writer", "-split-brain", "first"])
        #expect(waitFor { Self.serverID(through: proxy) == "2" })
    }

    @Test func aReaderListenerUsesFreshReplicasAndFallsBackToTheWriter() throws {
        let pair = try Pair()
        let proxy = try pair.proxy(["-role", "reader"], backends: [pair.primary, pair.replica])
        #expect(waitFor { Self.serverID(through: proxy) == "2" })
        // Replication stops: the replica no longer qualifies; readers go to the writer.
        try pair.replica.sql("STOP SLAVE")
        #expect(proxy.waitForLog("replication stopped"))
        #expect(waitFor { Self.serverID(through: proxy) == "1" })
        try pair.replica.sql("START SLAVE")
        #expect(waitFor { Self.serverID(through: proxy) == "2" })
    }

    @Test func withReaderFallbackNoneReadersAreRefusedWithoutAReplica() throws {
        let pair = try Pair()
        try pair.replica.sql("STOP SLAVE")
        let proxy = try pair.proxy(["-role", "reader", "-reader-fallback", "none"])
        #expect(proxy.waitForLog("replication stopped"))
        usleep(300_000)
        #expect(Self.serverID(through: proxy) == nil)
    }

    @Test func aWrongPasswordFailsTheCheckWithItsCauseOnceAndTheProxyRuns() throws {
        let pair = try Pair(password: "not-the-password")
        let proxy = try pair.proxy(["-fall", "1"])
        let refused = "login as monitor refused (wrong user or password?)"
        #expect(proxy.waitForLog(refused))
        usleep(1_200_000)  // several check intervals
        let lines = proxy.log.split(separator: "\n").filter { $0.contains(refused) }
        // Once per backend, in the line that marks it down: not once per interval.
        #expect(lines.count == 2, "\(lines.joined(separator: "\n"))")
        #expect(proxy.process.isRunning)
    }

    @Test func aMissingGrantFailsTheCheckNamingTheGrant() throws {
        let pair = try Pair(grant: "USAGE")
        let proxy = try pair.proxy(["-fall", "1"])
        #expect(proxy.waitForLog("the check user lacks a grant"))
        #expect(proxy.process.isRunning)
    }

    @Test func aPasswordFileOthersCanReadIsRefused() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("password")
        writeFile("secret\n", to: path, mode: 0o644)
        let (status, output) = try runProxyBinary([
            "-check", "mysql", "-check-user", "monitor", "-check-password-file", path, "127.0.0.1:0", "127.0.0.1:1",
        ])
        #expect(status == 2)
        #expect(output.contains("the password file \(path) is readable by group or others (mode 0644); chmod 600 it"), "\(output)")
    }

    @Test func rolesNeedTheLoginAndActiveChecks() throws {
        let (status, output) = try runProxyBinary(["-role", "writer", "-check", "mysql", "127.0.0.1:0", "127.0.0.1:1"])
        #expect(status == 2)
        #expect(output.contains("-role writer needs -check mysql, -check-user and -check-interval"), "\(output)")
    }
}
