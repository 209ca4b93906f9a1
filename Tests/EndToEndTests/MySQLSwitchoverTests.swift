import Foundation
import Synchronization
import TCPFallback
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Roles through the changes a replication tool makes, on a real MariaDB primary and two GTID
/// replicas, the new primary last in the proxy's list: a switchover, a failover and the old
/// primary's return, and a replica that falls behind and catches up.
@Suite(.serialized, .enabled(if: MariaDBServer.available, "mariadb-server is not installed; Scripts/test.sh installs it"))
struct MySQLSwitchoverTests {
    struct Cluster {
        let primary: MariaDBServer
        let first: MariaDBServer
        let last: MariaDBServer
        let directory: TemporaryDirectory
        let passwordFile: String

        init() throws {
            primary = try MariaDBServer(serverID: 1)
            first = try MariaDBServer(serverID: 2)
            last = try MariaDBServer(serverID: 3)
            for server in [primary, first, last] {
                // Users kept out of the binary log: each server has its own. `writer` has no
                // SUPER, so read_only applies to it (to `app`, which has ALL, it does not).
                try server.sql(
                    "SET sql_log_bin = 0; CREATE USER 'monitor'@'%' IDENTIFIED BY 'monitor-pw'; GRANT SLAVE MONITOR ON *.* TO 'monitor'@'%';"
                        + "CREATE USER 'writer'@'%' IDENTIFIED BY 'writer-pw'; GRANT SELECT, INSERT ON *.* TO 'writer'@'%';")
            }
            try primary.sql("CREATE DATABASE shop; CREATE TABLE shop.orders (id INT PRIMARY KEY);")
            for replica in [first, last] {
                try replica.replicate(from: primary)
                try replica.sql("SET GLOBAL read_only = 1")
            }
            directory = try TemporaryDirectory()
            passwordFile = directory.file("check-password")
            writeFile("monitor-pw\n", to: passwordFile)
        }

        func proxy(_ extra: [String]) throws -> ProxyProcess {
            try ProxyProcess(
                ["-check", "mysql", "-check-user", "monitor", "-check-password-file", passwordFile, "-check-interval", "200ms", "-timeout", "1s"]
                    + extra + ["127.0.0.1:0"] + [primary, first, last].map { "127.0.0.1:\($0.port)" })
        }

        /// What a replication tool does to make `new` the primary: the others wait for
        /// everything the old primary wrote, `new` stops replicating and takes writes, the
        /// remaining replica follows it.
        func promote(_ new: MariaDBServer, others: [MariaDBServer]) throws {
            for replica in [first, last] {
                let position = try primary.sql("SELECT @@gtid_binlog_pos")
                _ = try replica.sql("SELECT MASTER_GTID_WAIT('\(position)', 10)")
            }
            try new.sql("STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0")
            for replica in others {
                try replica.sql("STOP SLAVE")
                try replica.replicate(from: new)
            }
        }
    }

    /// One write as `writer`, through the proxy: nil when it succeeded, else the client's error.
    static func write(through proxy: ProxyProcess, id: Int) -> String? {
        guard let (status, output) = try? runProcess("/usr/bin/timeout", [
            "5", "/usr/bin/mariadb", "-h", "127.0.0.1", "-P", "\(proxy.port)", "-u", "writer", "-pwriter-pw", "--connect-timeout=5",
            "-N", "-B", "-e", "INSERT INTO shop.orders VALUES (\(id))",
        ]) else { return "could not run the client" }
        return status == 0 ? nil : output
    }

    static func serverID(through proxy: ProxyProcess) -> String? { mariadbClient(port: proxy.port, "SELECT @@server_id", timeout: 5) }

    /// Writes in a loop on their own thread, each one remembering when it started and how it ended.
    final class Writer: @unchecked Sendable {
        private let results = Locked<[(started: Date, error: String?)]>([])
        private let running = Atomic<Bool>(true)
        private let done = DispatchSemaphore(value: 0)

        init(through proxy: ProxyProcess, from id: Int) {
            Thread { [self] in
                var next = id
                while running.load(ordering: .relaxed) {
                    let started = Date()
                    let error = MySQLSwitchoverTests.write(through: proxy, id: next)
                    results.withLock { $0.append((started, error)) }
                    next += 1
                    usleep(20_000)
                }
                done.signal()
            }.start()
        }

        func stop() -> [(started: Date, error: String?)] {
            running.store(false, ordering: .relaxed)
            done.wait()
            return results.withLock { $0 }
        }
    }

    @Test func aSwitchoverToTheLastServerInTheListIsFollowedAndNoWriteLandsOnAReadOnlyServer() throws {
        let cluster = try Cluster()
        let proxy = try cluster.proxy(["-role", "writer", "-queue-timeout", "3s"])
        #expect(waitFor(8) { Self.serverID(through: proxy) == "1" })
        let writer = Writer(through: proxy, from: 1000)
        usleep(500_000)

        // The switchover: the old primary stops taking writes, the last server takes them.
        try cluster.primary.sql("SET GLOBAL read_only = 1")
        #expect(proxy.waitForLog("backend 127.0.0.1:\(cluster.primary.port) is read-only"))
        let seen = Date()
        try cluster.promote(cluster.last, others: [cluster.first])
        #expect(proxy.waitForLog("backend 127.0.0.1:\(cluster.last.port) is writable"))
        usleep(500_000)
        let results = writer.stop()

        #expect(Self.serverID(through: proxy) == "3")
        let late = results.filter { $0.started > seen }
        #expect(late.count >= 5, "only \(late.count) writes after the switchover")
        // Once the check saw the old primary read-only, no write went to a read-only server
        // (error 1290); clients waited for the new writer (-queue-timeout) instead.
        let readOnlyErrors = late.filter { $0.error?.contains("1290") == true }
        #expect(readOnlyErrors.isEmpty, "\(readOnlyErrors.map { $0.error ?? "" })")
        #expect(late.allSatisfy { $0.error == nil }, "\(late.compactMap(\.error))")
        // Every acknowledged write is on the new primary.
        let acknowledged = results.filter { $0.error == nil }.count
        #expect(try cluster.last.sql("SELECT COUNT(*) FROM shop.orders") == "\(acknowledged)")
    }

    @Test func anOldPrimaryThatComesBackWritableIsASplitBrainAndOneThatComesBackReadOnlyIsNoWriter() throws {
        let cluster = try Cluster()
        let proxy = try cluster.proxy(["-role", "writer"])
        #expect(waitFor(8) { Self.serverID(through: proxy) == "1" })

        // Failover: the primary dies, the tool promotes the last server.
        cluster.primary.crash()
        try cluster.last.sql("STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0")
        try cluster.first.sql("STOP SLAVE")
        try cluster.first.replicate(from: cluster.last)
        #expect(waitFor(8) { Self.serverID(through: proxy) == "3" })

        // It comes back as it was configured: writable. Two writable servers: writers refused.
        try cluster.primary.start()
        #expect(proxy.waitForLog("split brain: 127.0.0.1:\(cluster.primary.port) and 127.0.0.1:\(cluster.last.port) are all writable"))
        #expect(waitFor(8) { Self.write(through: proxy, id: 1) != nil })

        // Best practice: read_only=ON in its configuration. It comes back read-only: no writer.
        cluster.primary.crash()
        cluster.primary.options.append("--read-only=ON")
        try cluster.primary.start()
        #expect(proxy.waitForLog("split brain over; writers go to 127.0.0.1:\(cluster.last.port)"))
        #expect(proxy.waitForLog("backend 127.0.0.1:\(cluster.primary.port) is read-only"))
        #expect(waitFor(8) { Self.write(through: proxy, id: 2) == nil })
        #expect(Self.serverID(through: proxy) == "3")
    }

    @Test func aReplicaThatFallsBehindLeavesTheReadersAndComesBackWhenItCatchesUp() throws {
        let cluster = try Cluster()
        let proxy = try cluster.proxy(["-role", "reader", "-max-lag", "1s"])
        // Both replicas serve readers, in turn.
        var seen = Set<String>()
        #expect(waitFor(8) { seen.insert(Self.serverID(through: proxy) ?? "-"); return seen.isSuperset(of: ["2", "3"]) })

        // The first replica's SQL thread waits on a global read lock while writes go on.
        let lock = Process()
        lock.executableURL = URL(fileURLWithPath: "/usr/bin/mariadb")
        lock.arguments = ["-S", cluster.first.socketPath, "-u", "root", "-e", "FLUSH TABLES WITH READ LOCK; SELECT SLEEP(4)"]
        lock.standardOutput = FileHandle.nullDevice
        try lock.run()
        defer { if lock.isRunning { lock.terminate() } }
        var id = 0
        let behind = waitFor(6) {
            id += 1
            _ = try? cluster.primary.sql("INSERT INTO shop.orders VALUES (\(id))")
            return proxy.log.contains("backend 127.0.0.1:\(cluster.first.port) is over -max-lag")
        }
        #expect(behind, "\(proxy.log)")
        for _ in 0..<6 { #expect(Self.serverID(through: proxy) == "3") }

        // The lock goes; the replica catches up and gets readers again.
        lock.waitUntilExit()
        #expect(proxy.waitForLog("backend 127.0.0.1:\(cluster.first.port) caught up"))
        seen = []
        #expect(waitFor(8) { seen.insert(Self.serverID(through: proxy) ?? "-"); return seen.contains("2") })
    }
}
