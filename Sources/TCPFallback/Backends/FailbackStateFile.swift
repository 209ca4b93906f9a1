/// The state file of the `manual` failback policy: which backends stay out of rotation until
/// an operator allows them back. One line each, `held ADDRESS`; `#` starts a comment.
public enum FailbackStateFile {
    public struct LoadError: Error, CustomStringConvertible {
        public let description: String
    }

    /// The held backends written at `path`; none if the file does not exist yet.
    public static func load(_ path: String) throws(LoadError) -> Set<Endpoint> {
        guard let bytes = FileBytes.read(path) else {
            if access(path, F_OK) != 0 { return [] }
            throw LoadError(description: "cannot read state file \"\(path)\": \(ConnectFailure.errnoText(errno))")
        }
        var held: Set<Endpoint> = []
        for (number, line) in String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let words = line.split(separator: " ")
            if words.isEmpty || words[0].hasPrefix("#") { continue }
            guard words.count == 2, words[0] == "held", let endpoint = try? Endpoint(parsing: String(words[1]), role: .backend) else {
                throw LoadError(description: "state file \"\(path)\", line \(number + 1): expected \"held ADDRESS:PORT\", got \"\(line)\"")
            }
            held.insert(endpoint)
        }
        return held
    }

    /// Fails now, at start-up, if the state file could not be written later.
    public static func checkWritable(_ path: String) throws(LoadError) {
        do {
            try FileBytes.checkWritable(path)
        } catch {
            throw LoadError(description: "cannot write state file \"\(path)\": \(error.reason)")
        }
    }

    /// Replaces the file with `held`, atomically (a crash leaves the old file or the new one).
    /// The error names the state file and the cause.
    static func save(_ held: [Endpoint], to path: String) throws(LoadError) {
        let text = "# tcp-fallback: backends held out of rotation until 'tcp-fallback ctl failback BACKEND'\n"
            + held.map { "held \($0)\n" }.joined()
        do {
            try FileBytes.writeAtomically(Array(text.utf8), to: path)
        } catch {
            throw LoadError(description: "cannot save the failback state file \"\(path)\": \(error.reason)")
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
