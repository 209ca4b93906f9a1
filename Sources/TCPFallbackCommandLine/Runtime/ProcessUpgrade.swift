import Logging
import TCPFallback

/// `ctl upgrade`: this process starts its own binary anew (by the path it was started from, so
/// a new version once a package replaced the file) with its own arguments plus `-take-over`.
/// The new process takes the listening sockets over, tells systemd it is the main process now
/// (`MAINPID=`, accepted with `NotifyAccess=all`), and asks this one to retire. Started by this
/// process, it runs in the same service (cgroup) under the same supervision.
struct ProcessUpgrade: Sendable {
    /// This process's executable, read at start-up.
    let executable: String?
    /// This process's command line, as given.
    let arguments: [String]
    let controlPath: String
    let logger: Logger

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

    func start() -> ControlService.Reply {
        guard let executable else {
            return ControlService.Reply(ok: false, text: "cannot tell which file this process runs (/proc/self/exe could not be read)")
        }
        let pid: Int32
        do {
            pid = try ProcessSpawn.spawn(
                executable, arguments: Self.arguments(arguments, controlPath: controlPath),
                environment: ProcessSpawn.environment(removing: Self.privateVariables))
        } catch {
            logger.error("upgrade: \(error)", metadata: ["event": "upgrade"])
            return ControlService.Reply(ok: false, text: "\(error)")
        }
        logger.notice(
            "upgrade: started \(executable) as PID \(pid); it takes the listening sockets over, then this process retires",
            metadata: ["event": "upgrade"])
        let logger = self.logger
        ProcessSpawn.whenExits(pid) { status in
            logger.error(
                "upgrade: the new process (PID \(pid)) exited with status \(status); this process goes on serving unless it was asked to retire",
                metadata: ["event": "upgrade"])
        }
        return ControlService.Reply(ok: true, text: "started \(executable) as PID \(pid): it takes the listening sockets over, then this process retires")
    }
}
