/// One line sent to the control socket, parsed. `--json` anywhere asks for a JSON answer.
public struct ControlCommand: Sendable, Equatable {
    public enum Action: Sendable, Equatable {
        case help
        case showBackends
        case showStats
        case disable(String)
        case enable(String)
        case drain(String)
        case shutdownSessions(String)
        case failback(String)
        case profileStart(String)
        case profileStop
        /// An upgrade: pass the listening sockets to the new process listening at this path.
        case handOver(String)
        /// An upgrade: stop accepting, let connections finish, exit (as on SIGTERM).
        /// With the new process's PID, this one tells systemd that process is the service's
        /// main process now (it is the main one, so systemd takes its word).
        case retire(pid: Int32?)
        /// Re-read the configuration file and apply what changed (as SIGHUP).
        case reload
        /// Start this process's binary anew (a new version after a package upgrade), which
        /// takes the listening sockets over; then this process retires.
        case upgrade
    }

    public let action: Action
    public let json: Bool

    /// Why a line is not a command; the message says what would be.
    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// The commands, as `help` lists them.
    public static let usage = [
        "show backends             every backend: state, use, connections, bytes, errors",
        "show stats                the stats lines",
        "disable BACKEND           no new connections to BACKEND (open ones go on)",
        "enable BACKEND            put BACKEND back in rotation",
        "drain BACKEND             no new connections; the open ones finish",
        "shutdown sessions BACKEND close the open connections of BACKEND",
        "failback BACKEND          allow a backend held out of rotation back now",
        "profile start FILE        start a CPU profile",
        "profile stop              stop it and write the file",
        "hand-over PATH            pass the listening sockets to a new process (tcp-fallback -take-over)",
        "retire [PID]              stop accepting, let connections finish, exit (after a hand-over; PID: the new main process)",
        "reload                    re-read the -config file and apply what changed (as SIGHUP)",
        "upgrade                   start the binary anew (a new version): it takes the sockets over, this one retires",
        "help                      this list",
        "Add --json for a JSON answer. BACKEND is an address as configured (on every listener that has it),",
        "LISTENER/ADDRESS or LISTENER/INDEX for one listener of a -config file, or an index with one listener.",
        "disable, enable, drain and failback change the running process only: a reload or restart returns to the file.",
    ]

    public init(action: Action, json: Bool = false) {
        self.action = action
        self.json = json
    }

    public init(parsing line: String) throws(ParseError) {
        var words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        let json = words.contains("--json")
        words.removeAll { $0 == "--json" }
        func fail(_ message: String) -> ParseError { ParseError(description: message) }
        func backend(_ verb: String, at index: Int) throws(ParseError) -> String {
            guard words.count == index + 1 else { throw fail("usage: \(verb) BACKEND") }
            return words[index]
        }
        guard let verb = words.first else { throw fail("empty command; try 'help'") }
        let action: Action
        switch verb {
        case "help":
            action = .help
        case "show":
            switch words.dropFirst().first {
            case "backends" where words.count == 2: action = .showBackends
            case "stats" where words.count == 2: action = .showStats
            default: throw fail("usage: show backends | show stats")
            }
        case "disable": action = .disable(try backend("disable", at: 1))
        case "enable": action = .enable(try backend("enable", at: 1))
        case "drain": action = .drain(try backend("drain", at: 1))
        case "failback": action = .failback(try backend("failback", at: 1))
        case "shutdown":
            guard words.count == 3, words[1] == "sessions" else { throw fail("usage: shutdown sessions BACKEND") }
            action = .shutdownSessions(words[2])
        case "hand-over":
            guard words.count == 2 else { throw fail("usage: hand-over PATH") }
            action = .handOver(words[1])
        case "retire":
            guard words.count <= 2, words.count == 1 || Int32(words[1]).map({ $0 > 0 }) == true else { throw fail("usage: retire [PID]") }
            action = .retire(pid: words.count == 2 ? Int32(words[1]) : nil)
        case "reload":
            guard words.count == 1 else { throw fail("usage: reload") }
            action = .reload
        case "upgrade":
            guard words.count == 1 else { throw fail("usage: upgrade") }
            action = .upgrade
        case "profile":
            if words.count == 3, words[1] == "start" {
                action = .profileStart(words[2])
            } else if words.count == 2, words[1] == "stop" {
                action = .profileStop
            } else {
                throw fail("usage: profile start FILE | profile stop")
            }
        default:
            let shown = verb.count > 40 ? String(verb.prefix(40)) + "..." : verb
            throw fail("unknown command \"\(shown)\"; try 'help'")
        }
        self.init(action: action, json: json)
    }
}
