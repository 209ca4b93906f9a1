#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The login of the MySQL check (`-check-user`, `-check-password-file`).
public struct MySQLCredentials: Sendable, Equatable {
    public var user: String
    public var password: [UInt8]

    public init(user: String, password: [UInt8]) {
        self.user = user
        self.password = password
    }

    /// Reads the password from `path`: its first line, without the line end. The file must be
    /// a regular file that neither group nor others can read (a password is never given on
    /// the command line, where `ps` shows it).
    public static func readPassword(from path: String) throws(CredentialsError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { throw CredentialsError("cannot open the password file \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw CredentialsError("cannot read the password file \(path): \(String(cString: strerror(errno)))") }
        guard info.st_mode & S_IFMT == S_IFREG else { throw CredentialsError("the password file \(path) is not a regular file") }
        let mode = info.st_mode & 0o777
        guard mode & 0o077 == 0 else {
            throw CredentialsError(
                "the password file \(path) is readable by group or others (mode \(String(mode, radix: 8, uppercase: false).leftPadded(to: 4))); chmod 600 it")
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count <= 64 * 1024 {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw CredentialsError("cannot read the password file \(path): \(String(cString: strerror(errno)))") }
            if count == 0 { break }
            bytes += chunk[0..<count]
        }
        guard bytes.count <= 64 * 1024 else { throw CredentialsError("the password file \(path) is over 64 KiB: not a password") }
        var line = bytes.prefix { $0 != UInt8(ascii: "\n") }
        if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
        guard !line.isEmpty else { throw CredentialsError("the password file \(path) is empty") }
        return Array(line)
    }
}

public struct CredentialsError: Error, CustomStringConvertible, Equatable {
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
