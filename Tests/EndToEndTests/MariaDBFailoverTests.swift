import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Failover in front of a real MariaDB primary and replica (Debian mariadb-server, installed
/// by the test command), with real client transactions through the proxy.
@Suite(.serialized, .enabled(if: MariaDBServer.available, "mariadb-server is not installed; Scripts/test.sh installs it"))
struct MariaDBFailoverTests {
    /// A primary, a replica of it, and the proxy in front with the recommended MySQL flags.
    struct Cluster {
        let primary: MariaDBServer
        let replica: MariaDBServer
        let proxy: ProxyProcess
        let control: String
        let directory: TemporaryDirectory

        init(failback: String = "manual") throws {
            primary = try MariaDBServer(serverID: 1)
            replica = try MariaDBServer(serverID: 2)
            try primary.sql("CREATE DATABASE shop; CREATE TABLE shop.orders (id INT PRIMARY KEY, note TEXT);")
            try replica.replicate(from: primary)
            directory = try TemporaryDirectory()
            control = directory.file("control.sock")
            proxy = try ProxyProcess([
                "-check", "mysql", "-check-interval", "250ms", "-timeout", "1s", "-failback", failback,
                "-state-file", directory.file("state"), "-control", control,
                "127.0.0.1:0", "127.0.0.1:\(primary.port)", "127.0.0.1:\(replica.port)",
            ])
        }

        /// The server id of the server a new client lands on, or nil if the client failed.
        func serverID() -> String? { mariadbClient(port: proxy.port, "SELECT @@server_id") }

        func insert(_ id: Int) -> Bool { mariadbClient(port: proxy.port, "INSERT INTO shop.orders VALUES (\(id), 'x')") != nil }

        /// Retries a write until one succeeds; returns how long that took.
        func timeToFirstWrite(startingAt id: Int, limit: TimeInterval = 10) -> (seconds: TimeInterval, failed: Int)? {
            let start = Date()
            var failed = 0
            var next = id
            while Date().timeIntervalSince(start) < limit {
                if insert(next) { return (Date().timeIntervalSince(start), failed) }
                failed += 1
                next += 1
            }
            return nil
        }
    }

    @Test func killNineOfThePrimaryFailsOverAndKeepsAcknowledgedWrites() throws {
        let cluster = try Cluster()
        #expect(cluster.serverID() == "1")
        for id in 1...20 { #expect(cluster.insert(id)) }
        usleep(300_000)  // replication is asynchronous: let it carry the acknowledged writes

        cluster.primary.crash()
        let result = try #require(cluster.timeToFirstWrite(startingAt: 100))
        #expect(result.seconds < 2, "first successful write \(result.seconds)s after kill -9")
        #expect(result.failed <= 1)
        #expect(cluster.serverID() == "2")
        // Every write acknowledged before the crash is on the replica.
        #expect(try cluster.replica.sql("SELECT COUNT(*) FROM shop.orders WHERE id <= 20") == "20")
    }

    @Test func aStoppedPrimaryIsFailedOverAndNoClientHangs() throws {
        let cluster = try Cluster()
        #expect(cluster.serverID() == "1")
        cluster.primary.signal(SIGSTOP)
        defer { cluster.primary.signal(SIGCONT) }
        let result = try #require(cluster.timeToFirstWrite(startingAt: 200))
        // The greeting gate gives up on the silent primary after -timeout (1s).
        #expect(result.seconds < 3, "first successful write \(result.seconds)s after SIGSTOP")
        #expect(cluster.serverID() == "2")
        #expect(cluster.proxy.waitForLog("backend 127.0.0.1:\(cluster.primary.port) is down"))
    }

    @Test func underManualFailbackTheOldPrimaryGetsNoConnectionUntilAllowed() throws {
        let cluster = try Cluster(failback: "manual")
        #expect(cluster.serverID() == "1")
        cluster.primary.crash()
        #expect(cluster.timeToFirstWrite(startingAt: 300) != nil)

        // The old primary comes back and answers checks, but stays out of rotation.
        try cluster.primary.start()
        #expect(cluster.proxy.waitForLog("held out of rotation until an operator allows it back"))
        for _ in 0..<5 { #expect(cluster.serverID() == "2") }

        let (status, _) = try runProxyBinary(["ctl", "-control", cluster.control, "failback", "127.0.0.1:\(cluster.primary.port)"])
        #expect(status == 0)
        #expect(cluster.serverID() == "1")
    }

    @Test func underAutoFailbackTheOldPrimaryIsUsedAgain() throws {
        let cluster = try Cluster(failback: "auto")
        cluster.primary.crash()
        #expect(cluster.timeToFirstWrite(startingAt: 400) != nil)
        try cluster.primary.start()
        #expect(cluster.proxy.waitForLog("backend 127.0.0.1:\(cluster.primary.port) is back after"))
        #expect(cluster.serverID() == "1")
    }

    @Test func aGracefulStopOfThePrimaryFailsOver() throws {
        let cluster = try Cluster()
        #expect(cluster.serverID() == "1")
        cluster.primary.signal(SIGTERM)  // mariadbd shuts down cleanly
        let result = try #require(cluster.timeToFirstWrite(startingAt: 500))
        #expect(result.seconds < 3, "first successful write \(result.seconds)s after SIGTERM")
        #expect(cluster.serverID() == "2")
    }

    @Test func underHoldFailbackTheOldPrimaryWaitsOutItsHoldDown() throws {
        let cluster = try Cluster(failback: "hold")
        cluster.primary.crash()
        #expect(cluster.timeToFirstWrite(startingAt: 600) != nil)
        try cluster.primary.start()
        #expect(cluster.proxy.waitForLog("(hold-down)"))
        #expect(cluster.serverID() == "2")  // still held
    }

    /// A primary that answers "Too many connections": the gate sends clients to the replica.
    @Test func aPrimaryThatRefusesWithAnErrorPacketIsSkipped() async throws {
        let cluster = try Cluster()
        #expect(cluster.serverID() == "1")
        // Ten connections allowed (the least MariaDB takes), plus one for an administrator: hold
        // them all. Three holders more than slots: a holder that meets a slot the proxy's check
        // holds for a moment is refused and gone, and the others still fill every slot.
        try cluster.primary.sql("SET GLOBAL max_connections = 10")
        let holders = (0..<14).map { _ in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/mariadb")
            process.arguments = ["-S", cluster.primary.socketPath, "-u", "root", "-e", "SELECT SLEEP(20)"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try? process.run()
            return process
        }
        defer { for holder in holders { holder.terminate() } }
        #expect(await eventually(timeout: .seconds(10)) { (try? cluster.primary.sql("SELECT 1")) == nil })
        #expect(cluster.serverID() == "2")
        #expect(cluster.proxy.waitForLog("Too many connections"), "\(cluster.proxy.log)")
    }
}
