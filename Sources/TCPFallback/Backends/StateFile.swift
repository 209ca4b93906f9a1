#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The state file (`-state-file`): what must survive a restart. One line each, `#` starts a
/// comment:
/// - `held ADDRESS`: a backend the `manual` failback policy holds out of rotation until an
///   operator allows it back;
/// - `backend ADDRESS`: the last list of backends etcd gave (`-etcd`), in order, so a proxy
///   that starts while etcd is down starts with it.
/// The registry is its only writer.
public enum StateFile {
    public struct Contents: Sendable, Equatable {
        public var held: Set<Endpoint> = []
        /// The last list from etcd; empty if none was kept.
        public var backends: [Endpoint] = []

        public init(held: Set<Endpoint> = [], backends: [Endpoint] = []) {
            self.held = held
            self.backends = backends
        }
    }

    public struct LoadError: Error, CustomStringConvertible {
        public let description: String
    }

    /// What is written at `path`; nothing if the file does not exist yet.
    public static func load(_ path: String) throws(LoadError) -> Contents {
        guard let bytes = FileBytes.read(path) else {
            if access(path, F_OK) != 0 { return Contents() }
            throw LoadError(description: "cannot read state file \"\(path)\": \(ConnectFailure.errnoText(errno))")
        }
        var contents = Contents()
        for (number, line) in String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let words = line.split(separator: " ")
            if words.isEmpty || words[0].hasPrefix("#") { continue }
            guard words.count == 2, words[0] == "held" || words[0] == "backend",
                let endpoint = try? Endpoint(parsing: String(words[1]), role: .backend)
            else {
                throw LoadError(description: "state file \"\(path)\", line \(number + 1): expected \"held ADDRESS:PORT\" or \"backend ADDRESS:PORT\", got \"\(line)\"")
            }
            if words[0] == "held" {
                contents.held.insert(endpoint)
            } else {
                contents.backends.append(endpoint)
            }
        }
        return contents
    }

    /// Fails now, at start-up, if the state file could not be written later.
    public static func checkWritable(_ path: String) throws(LoadError) {
        do {
            try FileBytes.checkWritable(path)
        } catch {
            throw LoadError(description: "cannot write state file \"\(path)\": \(error.reason)")
        }
    }

    /// Replaces the file with `contents`, atomically (a crash leaves the old file or the new
    /// one). The error names the state file and the cause.
    static func save(_ contents: Contents, to path: String) throws(LoadError) {
        var text = "# tcp-fallback state: 'held' backends stay out of rotation until 'tcp-fallback ctl failback BACKEND';\n"
            + "# 'backend' lines are the last list etcd gave, used when etcd is down at start-up\n"
        text += contents.held.map(\.description).sorted().map { "held \($0)\n" }.joined()
        text += contents.backends.map { "backend \($0)\n" }.joined()
        do {
            try FileBytes.writeAtomically(Array(text.utf8), to: path)
        } catch {
            throw LoadError(description: "cannot save the state file \"\(path)\": \(error.reason)")
        }
    }
}
