import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A real etcd cluster for the etcd client's tests: `members` etcd processes (Debian's
/// etcd-server, /usr/bin/etcd) on 127.0.0.1 with free ports, each with its own data
/// directory under one temporary directory, killed and removed by `stop()` (and deinit).
///
/// Elections are short (50 ms heartbeats, 500 ms election timeout) so that a cluster starts
/// and recovers from a killed member within a second or two. Start-up is retried with new
/// ports: a port found free may be taken by someone else before etcd binds it, and a slow
/// machine may need more than one try.
///
/// It talks to etcd with plain HTTP on blocking sockets (`/health`, `/v3/maintenance/status`)
/// rather than through the client under test, so a bug of the client cannot hide as a
/// harness problem.
///
/// `@unchecked Sendable`: every mutable property (`processes`, ports, `stopped`) is read and
/// written only under `lock`; `Process` objects are used only through those locked reads.
public final class EtcdCluster: @unchecked Sendable {
    public static let binary = "/usr/bin/etcd"
    public static let available: Bool = FileManager.default.isExecutableFile(atPath: binary)

    public struct ClusterError: Error, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    public let memberCount: Int
    private let directory: TemporaryDirectory
    private let lock = NSLock()
    private var processes: [Process?]
    private var clientPorts: [Int] = []
    private var peerPorts: [Int] = []
    private var token = ""
    private var stopped = false

    /// Where members take clients: 127.0.0.1, or "0.0.0.0" for a test network's hosts too.
    public let listenAddress: String

    /// Starts `members` etcd processes as a new cluster and waits until every one is healthy.
    /// - Parameter listenAddress: the address clients reach the members on (peers always use
    ///   127.0.0.1).
    public init(members: Int = 3, listenAddress: String = "127.0.0.1") throws {
        precondition(members >= 1)
        memberCount = members
        self.listenAddress = listenAddress
        processes = Array(repeating: nil, count: members)
        directory = try TemporaryDirectory()
        var failures: [String] = []
        for attempt in 1...3 {
            do {
                try startNewCluster(attempt: attempt)
                return
            } catch {
                failures.append("attempt \(attempt): \(error)")
                killAll()
                // A fresh cluster needs empty data directories (and new ports, next time).
                for member in 0..<members { try? FileManager.default.removeItem(atPath: dataDirectory(member)) }
            }
        }
        stop()
        throw ClusterError(message: "etcd cluster did not start:\n" + failures.joined(separator: "\n"))
    }

    deinit { stop() }

    /// "http://127.0.0.1:PORT" of each member, in member order.
    public var clientURLs: [String] { clientURLs(host: "127.0.0.1") }

    /// "http://HOST:PORT" of each member: with `listenAddress` "0.0.0.0", any address of this host.
    public func clientURLs(host: String) -> [String] { lock.withLock { clientPorts }.map { "http://\(host):\($0)" } }

    /// "127.0.0.1:PORT" of each member, in member order.
    public var endpoints: [String] { lock.withLock { clientPorts }.map { "127.0.0.1:\($0)" } }

    public func clientPort(of member: Int) -> Int { lock.withLock { clientPorts[member] } }

    /// Whether a member's process is running.
    public func isRunning(member: Int) -> Bool { lock.withLock { processes[member]?.isRunning ?? false } }

    // MARK: Life cycle

    private func startNewCluster(attempt: Int) throws {
        var ports: [Int] = []
        while ports.count < 2 * memberCount {
            let port = try refusingPort()
            if !ports.contains(port) { ports.append(port) }
        }
        lock.withLock {
            clientPorts = Array(ports[0..<memberCount])
            peerPorts = Array(ports[memberCount...])
            token = "tcp-fallback-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))-\(attempt)"
        }
        for member in 0..<memberCount { try launch(member: member) }
        try waitUntilHealthy(timeout: 30)
    }

    /// Waits (up to `timeout`) until a member serves its peers. A new member first asks the
    /// other members whether the cluster exists, and one that is starting too has its port
    /// open but does not answer yet: the asking member then waits a second per peer. Started
    /// one after the other, each finds the earlier ones serving and the later ones refusing,
    /// and the cluster is up in a fraction of a second.
    private func waitUntilServingPeers(member: Int, timeout: Double = 10) {
        let port = lock.withLock { peerPorts[member] }
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline && isRunning(member: member) {
            if (try? exchange(port: port, method: "GET", path: "/members", body: nil, timeout: 1)) != nil { return }
            usleep(10_000)
        }
    }

    private func dataDirectory(_ member: Int) -> String { directory.file("member\(member)") }

    /// Where a member's etcd writes its log: shown when start-up fails.
    public func logFile(of member: Int) -> String { directory.file("member\(member).log") }

    private func launch(member: Int) throws {
        let (clientPort, peerURLs, token) = lock.withLock {
            (clientPorts[member], peerPorts.map { "http://127.0.0.1:\($0)" }, self.token)
        }
        let cluster = peerURLs.enumerated().map { "m\($0.offset)=\($0.element)" }.joined(separator: ",")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = [
            "--name", "m\(member)",
            "--data-dir", dataDirectory(member),
            "--listen-client-urls", "http://\(listenAddress):\(clientPort)",
            "--advertise-client-urls", "http://127.0.0.1:\(clientPort)",
            "--listen-peer-urls", peerURLs[member],
            "--initial-advertise-peer-urls", peerURLs[member],
            "--initial-cluster", cluster,
            "--initial-cluster-token", token,
            "--initial-cluster-state", "new",  // ignored on a restart: the data directory has the cluster
            "--heartbeat-interval", "50",
            "--election-timeout", "500",
            "--logger", "zap",
            "--log-level", "warn",
            "--log-outputs", "stderr",
        ]
        _ = FileManager.default.createFile(atPath: logFile(of: member), contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logFile(of: member)))
        log.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        // ETCD_* variables of the environment would be read as flags: leave none.
        process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("ETCD") }
        try process.run()
        try? log.close()
        lock.withLock { processes[member] = process }
        waitUntilServingPeers(member: member)
    }

    /// Restarts a killed member on its data directory and ports; waits until it is healthy.
    public func start(member: Int, timeout: Double = 30) throws {
        guard !isRunning(member: member) else { return }
        try launch(member: member)
        try waitUntilHealthy(members: [member], timeout: timeout)
    }

    /// SIGKILL of one member; returns once the process is gone (its ports are closed).
    public func kill(member: Int) {
        guard let process = lock.withLock({ processes[member] }) else { return }
        if process.isRunning {
            Glibc.kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
        lock.withLock { processes[member] = nil }
    }

    /// Stops a member without closing anything (SIGSTOP): its connections stay open and
    /// silent, as a hung host's; `resume` continues it (SIGCONT). `kill` works on it too.
    public func pause(member: Int, _ paused: Bool = true) {
        guard let process = lock.withLock({ processes[member] }), process.isRunning else { return }
        Glibc.kill(process.processIdentifier, paused ? SIGSTOP : SIGCONT)
    }

    /// Kills every member (their data stays, for `startAll`).
    public func stopAll() { killAll() }

    /// Starts every member that is not running and waits until all are healthy.
    public func startAll(timeout: Double = 30) throws {
        for member in 0..<memberCount where !isRunning(member: member) {
            try launch(member: member)
        }
        try waitUntilHealthy(timeout: timeout)
    }

    private func killAll() {
        for member in 0..<memberCount { kill(member: member) }
    }

    /// Kills every member and removes every directory; later calls do nothing.
    public func stop() {
        let first = lock.withLock { () -> Bool in
            defer { stopped = true }
            return !stopped
        }
        guard first else { return }
        killAll()
        directory.remove()
    }

    // MARK: State

    /// Waits until `members` (all by default) answer /health with true: they see a leader
    /// and a quorum read succeeds through them.
    public func waitUntilHealthy(members: [Int]? = nil, timeout: Double = 30) throws {
        let members = members ?? Array(0..<memberCount)
        let deadline = Date().addingTimeInterval(timeout)
        var pending = Set(members)
        while Date() < deadline {
            for member in pending.sorted() {
                guard isRunning(member: member) else {
                    throw ClusterError(message: "etcd member \(member) exited:\n\(logTail(of: member))")
                }
                if healthy(member: member) { pending.remove(member) }
            }
            if pending.isEmpty { return }
            usleep(50_000)
        }
        let tails = pending.sorted().map { "member \($0):\n\(logTail(of: $0))" }.joined(separator: "\n")
        throw ClusterError(message: "etcd members \(pending.sorted()) not healthy after \(timeout) s:\n\(tails)")
    }

    /// Whether a member knows a leader and answers /health with {"health":"true"}. The
    /// leader is asked first, from the member's status (answered locally, at once): /health
    /// of a member without a leader takes a second to say false.
    public func healthy(member: Int) -> Bool {
        guard let status = try? request(member: member, method: "POST", path: "/v3/maintenance/status", body: "{}", timeout: 2),
            let leader = Self.idText(status["leader"]), leader != "0"
        else { return false }
        guard let answer = try? request(member: member, method: "GET", path: "/health", body: nil, timeout: 3) else { return false }
        return (answer["health"] as? String) == "true"
    }

    /// Whether a member knows of a leader (its status names one), nil if it does not answer.
    /// A member whose leader was just killed still names it until an election timeout passes.
    public func hasLeader(member: Int) -> Bool? {
        guard let status = try? request(member: member, method: "POST", path: "/v3/maintenance/status", body: "{}", timeout: 2)
        else { return nil }
        return (Self.idText(status["leader"]) ?? "0") != "0"
    }

    /// The index of the member that is the leader, as the running members report it; nil
    /// if none knows of one that is running.
    public func leaderIndex() -> Int? {
        var memberIDs: [Int: String] = [:]
        var leader: String?
        for member in 0..<memberCount where isRunning(member: member) {
            guard let status = try? request(member: member, method: "POST", path: "/v3/maintenance/status", body: "{}", timeout: 2),
                let header = status["header"] as? [String: Any]
            else { continue }
            memberIDs[member] = Self.idText(header["member_id"])
            if let reported = Self.idText(status["leader"]), reported != "0" { leader = reported }
        }
        guard let leader else { return nil }
        return memberIDs.first(where: { $0.value == leader })?.key
    }

    /// int64 fields are strings in the gateway's JSON; accept a number as well.
    private static func idText(_ value: Any?) -> String? {
        switch value {
        case let text as String: return text
        case let number as NSNumber: return number.stringValue
        default: return nil
        }
    }

    /// The last lines of a member's log, for failure messages.
    public func logTail(of member: Int, lines: Int = 15) -> String {
        let text = (try? String(contentsOfFile: logFile(of: member), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    /// A gauge or counter of a member's /metrics (Prometheus text), or nil if it is not there.
    public func metric(_ name: String, member: Int) -> Double? {
        guard let (status, body) = try? exchange(port: clientPort(of: member), method: "GET", path: "/metrics", body: nil, timeout: 2), status == 200
        else { return nil }
        for line in String(decoding: body, as: UTF8.self).split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }

    /// One JSON request to a member; returns the answer's JSON object (a 200 answer only).
    private func request(member: Int, method: String, path: String, body: String?, timeout: Double) throws -> [String: Any] {
        let (status, answer) = try exchange(port: clientPort(of: member), method: method, path: path, body: body, timeout: timeout)
        guard status == 200 else { throw ClusterError(message: "member \(member) answered HTTP \(status)") }
        let parsed = try JSONSerialization.jsonObject(with: Data(answer))
        guard let object = parsed as? [String: Any] else { throw ClusterError(message: "member \(member): not a JSON object") }
        return object
    }

    /// One HTTP/1.0 request to a port of a member; returns the status and the body (read
    /// to its Content-Length: the peer port keeps the connection open after its answer).
    private func exchange(port: Int, method: String, path: String, body: String?, timeout: Double) throws -> (Int, [UInt8]) {
        let socket = try TestSocket.connect(port: port, timeout: timeout)
        defer { socket.close() }
        var text = "\(method) \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        if let body { text += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)" } else { text += "\r\n" }
        try socket.send(text)
        var answer: [UInt8] = []
        var headEnd: Range<Int>?
        var contentLength: Int?
        while true {
            if let headEnd, let contentLength, answer.count - headEnd.upperBound >= contentLength { break }
            let chunk = try socket.receive()
            if chunk.isEmpty { break }
            answer += chunk
            if headEnd == nil, let end = answer.firstRange(of: Array("\r\n\r\n".utf8)) {
                headEnd = end
                let head = String(decoding: answer[..<end.lowerBound], as: UTF8.self).lowercased()
                contentLength = head.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") })
                    .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) }
            }
        }
        guard let headEnd else { throw ClusterError(message: "no HTTP answer from port \(port)") }
        let statusLine = String(decoding: answer[..<headEnd.lowerBound], as: UTF8.self).split(separator: "\r\n").first ?? ""
        let status = statusLine.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return (status, Array(answer[headEnd.upperBound...]))
    }
}
