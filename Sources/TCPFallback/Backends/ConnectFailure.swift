import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Words for why a connection to a backend failed, and whether the fault is ours.
public enum ConnectFailure {
    /// A short, lower-case reason for logs: `connection refused`, `connect timed out after 5s`.
    static func describe(_ error: any Error) -> String {
        switch error {
        case let error as IOError:
            return errnoText(error.errnoCode)
        case let error as SocketError:
            return errnoText(error.errno)
        case ChannelError.connectTimeout(let timeout):
            return "connect timed out after \(GoDuration.format(.nanoseconds(timeout.nanoseconds)))"
        case let error as NIOConnectionError:
            if let first = error.connectionErrors.first { return describe(first.error) }
            if let dns = error.dnsAError ?? error.dnsAAAAError { return "cannot resolve host: \(dns)" }
            return "cannot resolve host: no addresses"
        default:
            return String(describing: error)
        }
    }

    /// Errors that say this process or machine is out of something (descriptors, buffers,
    /// memory). They are not the backend's fault and must never mark it down.
    static func isLocalResourceError(_ error: any Error) -> Bool {
        switch error {
        case let error as IOError:
            return [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(error.errnoCode)
        case let error as SocketError:
            return [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(error.errno)
        case let error as NIOConnectionError:
            return error.connectionErrors.contains { isLocalResourceError($0.error) }
        default:
            return false
        }
    }

    public static func errnoText(_ code: Int32) -> String {
        guard let text = strerror(code) else { return "errno \(code)" }
        let message = String(cString: text)
        return message.prefix(1).lowercased() + message.dropFirst()
    }
}
