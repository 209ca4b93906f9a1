import Logging
import TCPFallback

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `ctl upgrade`: this process starts its own binary anew (by the path it was started with, so
/// a new version once a package replaced the file or moved a link) with its own arguments plus
/// `-take-over`. The new process takes the listening sockets over and asks this one to retire,
/// naming itself; this one, the service's main process, tells systemd the new one is the main
/// process now (`MAINPID=`). Started by this process, it runs in the same service (cgroup)
/// under the same supervision.
///
/// The answer waits for the outcome: the new process took over, or it exited first (this one
/// goes on serving), or neither within `patience`. One upgrade at a time.
final class ProcessUpgrade: Sendable {
    /// Where an upgrade stands.
    enum State: Equatable {
        case idle
        case started(pid: Int32)
        case tookOver(pid: Int32)
        case failed(pid: Int32, status: Int32)
    }

    /// The program as this process was started (argv[0]; a bare name is looked up in PATH).
    let executable: String
    /// This process's command line, as given.
    let arguments: [String]
    let controlPath: String
    let logger: Logger
    let patience: Duration
    private let state = Locked(State.idle)

    init(executable: String, arguments: [String], controlPath: String, logger: Logger, patience: Duration = .seconds(25)) {
        self.executable = executable
        self.arguments = arguments
        self.controlPath = controlPath
        self.logger = logger
        self.patience = patience
    }

    /// Variables that describe this process only: the new one must not take them for its own.
    static let privateVariables: Set<String> = ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_PID"]

    /// The new process's arguments: these, without any earlier `-take-over`, plus one naming
    /// this process's control socket.
    static func arguments(_ arguments: [String], controlPath: String) -> [String] {
        var result: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "--" {
                result += arguments[(index - 1)...]
                break
            }
            if ["-take-over", "--take-over"].contains(argument) {
                index += 1
            } else if !(argument.hasPrefix("-take-over=") || argument.hasPrefix("--take-over=")) {
                result.append(argument)
            }
        }
        // Flags go before a "--", where they are still flags.
        let flags = ["-take-over", controlPath]
        if let separator = result.firstIndex(of: "--") { result.insert(contentsOf: flags, at: separator) } else { result += flags }
        return result
    }

    /// A process asked this one to retire: if it is the one this upgrade started, it took over.
    func retiring(requestedBy pid: Int32?) {
        state.withLock { state in
            if case .started(let started) = state, started == pid { state = .tookOver(pid: started) }
        }
    }

    /// Starts the new process and waits for the outcome.
    func start() async -> ControlService.Reply {
        let refusal = state.withLock { state -> String? in
            switch state {
            case .started(let pid): return "an upgrade is in progress: PID \(pid) has not taken over yet"
            case .tookOver(let pid): return "PID \(pid) took over already: this process is retiring"
            case .idle, .failed: return nil
            }
        }
        if let refusal { return ControlService.Reply(ok: false, text: refusal) }
        let pid: Int32
        do {
            pid = try ProcessSpawn.spawn(
                executable, arguments: Self.arguments(arguments, controlPath: controlPath),
                environment: ProcessSpawn.environment(removing: Self.privateVariables))
        } catch {
            logger.error("upgrade: \(error)", metadata: ["event": "upgrade"])
            return ControlService.Reply(ok: false, text: "\(error)")
        }
        state.withLock { $0 = .started(pid: pid) }
        logger.notice(
            "upgrade: started \(executable) as PID \(pid); it takes the listening sockets over, then this process retires",
            metadata: ["event": "upgrade"])
        let logger = self.logger
        let state = self.state
        ProcessSpawn.whenExits(pid) { status in
            let failedEarly = state.withLock { current -> Bool in
                guard current == .started(pid: pid) else { return false }
                current = .failed(pid: pid, status: status)
                return true
            }
            if failedEarly {
                logger.error(
                    "upgrade: the new process (PID \(pid)) exited with status \(status) before it took over; this process goes on serving",
                    metadata: ["event": "upgrade"])
            }
        }
        let deadline = ContinuousClock.now + patience
        while ContinuousClock.now < deadline {
            switch state.withLock({ $0 }) {
            case .tookOver:
                return ControlService.Reply(ok: true, text: "PID \(pid) (\(executable)) took the listening sockets over; this process retires")
            case .failed(_, let status):
                return ControlService.Reply(
                    ok: false, text: "the new process (PID \(pid), \(executable)) exited with status \(status) before it took over; this process goes on serving")
            default:
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        return ControlService.Reply(
            ok: false, text: "PID \(pid) has not taken over after \(GoDuration.format(patience)); this process goes on serving, and both may accept until one is stopped")
    }
}
