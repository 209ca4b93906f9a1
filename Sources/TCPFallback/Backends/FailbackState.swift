/// The state file of the `manual` failback policy: which backends stay out of rotation until
/// an operator allows them back. One line each, `held ADDRESS`; `#` starts a comment.
public enum FailbackState {
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
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
