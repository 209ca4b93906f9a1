#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A unix socket path only this user can reach: `s` in a new directory beside `path` that
/// only this user can enter (mkdtemp creates it 0700). The control socket is bound there
/// before it is renamed into place; an upgrade receives the listening sockets there. Nil
/// when the directory cannot be made or the name would not fit in sun_path.
struct PrivateSocketPath {
    let directory: String
    let socket: String

    init?(for path: String) {
        let parent = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        var template = Array("\(parent.isEmpty ? "" : parent)/.tcp-fallback-ctl.XXXXXX".utf8CString)
        // sun_path is 108 bytes with the final NUL; the name adds "/s".
        guard template.count - 1 + 2 <= 107, let made = mkdtemp(&template) else { return nil }
        directory = String(cString: made)
        socket = directory + "/s"
    }

    /// Removes what is left (the directory, and the socket if it was not renamed).
    func remove() {
        unlink(socket)
        rmdir(directory)
    }
}
