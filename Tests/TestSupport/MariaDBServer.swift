import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A real MariaDB server for the failover tests: its own data directory under /tmp, started
/// directly with `mariadbd` on 127.0.0.1 and a free port, removed when the test ends.
public final class MariaDBServer: @unchecked Sendable {
    public static let available: Bool = ["/usr/sbin/mariadbd", "/usr/bin/mariadb-install-db", "/usr/bin/mariadb"]
        .allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }

    public let port: Int
    public let serverID: Int
    private let directory: TemporaryDirectory
    private var process: Process?

    public var socketPath: String { directory.file("sock") }

    public init(serverID: Int) throws {
        self.serverID = serverID
        directory = try TemporaryDirectory()
        port = try refusingPort()
        let (status, output) = try runProcess("/usr/bin/mariadb-install-db", [
            "--no-defaults", "--datadir=\(directory.file("data"))", "--auth-root-authentication-method=normal",
            "--skip-test-db", "--user=root",
        ])
        guard status == 0 else { throw ProxyProcess.ProcessError(message: "mariadb-install-db failed: \(output)") }
        try start()
        // Each server gets its own users, kept out of the binary log so a replica does not
        // replay them (and stop on "user exists").
        _ = try sql("SET sql_log_bin = 0; CREATE USER 'app'@'%' IDENTIFIED BY 'pw'; GRANT ALL ON *.* TO 'app'@'%';"
            + "CREATE USER 'repl'@'%' IDENTIFIED BY 'repl'; GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';")
    }

    deinit {
        if let process, process.isRunning {
            kill(process.processIdentifier, SIGCONT)
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// Starts mariadbd (again) on the same data and port, and waits until it answers.
    public func start() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/mariadbd")
        process.arguments = [
            "--no-defaults", "--datadir=\(directory.file("data"))", "--socket=\(socketPath)", "--port=\(port)",
            "--bind-address=127.0.0.1", "--user=root", "--server-id=\(serverID)", "--log-bin=\(directory.file("binlog"))",
            "--pid-file=\(directory.file("pid"))", "--skip-name-resolve", "--innodb-buffer-pool-size=16M",
            "--log-error=\(directory.file("error.log"))",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if (try? sql("SELECT 1")) != nil { return }
            usleep(50_000)
        }
        throw ProxyProcess.ProcessError(message: "mariadbd on port \(port) did not start")
    }

    /// Runs SQL as root over the unix socket; returns the rows, tab-separated.
    @discardableResult
    public func sql(_ statements: String) throws -> String {
        let (status, output) = try runProcess("/usr/bin/mariadb", ["-S", socketPath, "-u", "root", "-N", "-B", "-e", statements])
        guard status == 0 else { throw ProxyProcess.ProcessError(message: "SQL failed on \(port): \(output)") }
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Makes this server a replica of `primary`.
    public func replicate(from primary: MariaDBServer) throws {
        try sql("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=\(primary.port), MASTER_USER='repl', MASTER_PASSWORD='repl', MASTER_USE_GTID=slave_pos; START SLAVE;")
    }

    public func signal(_ number: Int32) {
        if let process { kill(process.processIdentifier, number) }
    }

    /// kill -9, and waits for the process to be gone.
    public func crash() {
        guard let process else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

/// A client transaction through a proxy with the `mariadb` command-line client: returns its
/// output, or nil if it failed.
public func mariadbClient(port: Int, _ statements: String, timeout: Int = 10) -> String? {
    guard let (status, output) = try? runProcess("/usr/bin/timeout", [
        "\(timeout)", "/usr/bin/mariadb", "-h", "127.0.0.1", "-P", "\(port)", "-u", "app", "-ppw", "--connect-timeout=\(timeout)",
        "-N", "-B", "-e", statements,
    ]), status == 0 else { return nil }
    return output.trimmingCharacters(in: .whitespacesAndNewlines)
}
