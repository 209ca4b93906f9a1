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
    /// Where it listens: 127.0.0.1, or an address in a test network namespace.
    public let host: String
    private let namespace: String?
    private let maxConnectErrors: Int?
    private let directory: TemporaryDirectory
    private var process: Process?
    /// Server options, used at every start (a test may change them before a restart).
    public var options: [String]

    public var socketPath: String { directory.file("sock") }

    /// - Parameters:
    ///   - namespace: run inside this network namespace (`TestNetwork`), listening on `host`.
    ///   - options: more server options, e.g. `--proxy-protocol-networks=...`.
    public init(serverID: Int, namespace: String? = nil, host: String = "127.0.0.1", maxConnectErrors: Int? = nil, options: [String] = []) throws {
        self.serverID = serverID
        self.options = options
        self.namespace = namespace
        self.host = host
        self.maxConnectErrors = maxConnectErrors
        directory = try TemporaryDirectory()
        port = namespace == nil ? try refusingPort() : 3306
        // Its own temporary directory: two servers set up at once must not share /tmp's names.
        try FileManager.default.createDirectory(atPath: directory.file("tmp"), withIntermediateDirectories: true)
        let (status, output) = try runProcess(
            "/usr/bin/mariadb-install-db",
            [
                "--no-defaults", "--datadir=\(directory.file("data"))", "--auth-root-authentication-method=normal",
                "--skip-test-db", "--user=root",
            ],
            environment: ["TMPDIR": directory.file("tmp")])
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
        var arguments = [
            "--no-defaults", "--datadir=\(directory.file("data"))", "--socket=\(socketPath)", "--port=\(port)",
            "--bind-address=\(host)", "--user=root", "--server-id=\(serverID)", "--log-bin=\(directory.file("binlog"))",
            "--pid-file=\(directory.file("pid"))", "--innodb-buffer-pool-size=16M", "--tmpdir=\(directory.file("tmp"))",
            "--log-error=\(directory.file("error.log"))",
        ]
        // In a namespace the server resolves its clients' names (from the namespace's hosts
        // file), as a server on a network does: that is when it counts their handshake errors.
        if namespace == nil { arguments.append("--skip-name-resolve") }
        if let maxConnectErrors { arguments.append("--max-connect-errors=\(maxConnectErrors)") }
        arguments += options
        if let namespace {
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
            process.arguments = ["netns", "exec", namespace, "/usr/sbin/mariadbd"] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/mariadbd")
            process.arguments = arguments
        }
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
public func mariadbClient(host: String = "127.0.0.1", port: Int, _ statements: String, timeout: Int = 10) -> String? {
    mariadbClientOutput(host: host, port: port, statements, timeout: timeout).ok
}

/// Like `mariadbClient`, with the output also when it failed (the server's error).
public func mariadbClientOutput(host: String = "127.0.0.1", port: Int, _ statements: String, timeout: Int = 10) -> (ok: String?, output: String) {
    guard let (status, output) = try? runProcess("/usr/bin/timeout", [
        "\(timeout)", "/usr/bin/mariadb", "-h", host, "-P", "\(port)", "-u", "app", "-ppw", "--connect-timeout=\(timeout)",
        "-N", "-B", "-e", statements,
    ]) else { return (nil, "") }
    let text = output.trimmingCharacters(in: .whitespacesAndNewlines)
    return (status == 0 ? text : nil, text)
}
