import TCPFallback

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `tcp-fallback ctl [-control PATH] COMMAND...`: sends one command to a running proxy's
/// control socket and prints the answer. Exit status 0 when the command succeeded, 1 when
/// the proxy answered with an error or could not be reached, 2 for a bad command line.
enum ControlClient {
    static let defaultPath = "/run/tcp-fallback.sock"

    static let usage = """
        usage: tcp-fallback ctl [-control PATH] COMMAND [--json]
        Sends COMMAND to the control socket of a running tcp-fallback (default \(defaultPath)).
        Commands:
        """ + ControlCommand.usage.map { "  " + $0 }.joined(separator: "\n")

    static func main(_ arguments: [String]) -> CommandLineTool.ExitStatus {
        var path = defaultPath
        var words: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if ["-control", "--control"].contains(argument) {
                guard index < arguments.count else {
                    CommandLineTool.printError("tcp-fallback ctl: flag needs an argument: -control\n\(usage)")
                    return .usage
                }
                path = arguments[index]
                index += 1
            } else if argument.hasPrefix("-control=") || argument.hasPrefix("--control=") {
                path = String(argument.drop(while: { $0 != "=" }).dropFirst())
            } else if ["-h", "-help", "--help"].contains(argument) {
                print(usage)
                return .success
            } else {
                words.append(argument)
            }
        }
        guard !words.isEmpty else {
            CommandLineTool.printError("tcp-fallback ctl: missing command\n\(usage)")
            return .usage
        }
        switch send(words.joined(separator: " "), to: path) {
        case .success(let answer):
            let text = answer.hasSuffix("\n\n") ? String(answer.dropLast()) : answer
            let failed = text.hasPrefix("error:") || text.hasPrefix("{\"ok\":false")
            if failed { CommandLineTool.printError(String(text.dropLast())) } else { print(text, terminator: "") }
            return failed ? .failure : .success
        case .failure(let error):
            CommandLineTool.printError("tcp-fallback ctl: \(error)")
            return .failure
        }
    }

    struct ClientError: Error, CustomStringConvertible {
        let description: String
    }

    /// Connects, sends the line, ends the stream and reads the whole answer.
    static func send(_ line: String, to path: String) -> Result<String, ClientError> {
        let fd = socket(AF_UNIX, SocketFlags.stream | SocketFlags.closeOnExec, 0)
        guard fd >= 0 else { return .failure(ClientError(description: "socket: \(String(cString: strerror(errno)))")) }
        defer { close(fd) }
        let connected = UnixSocketAddress.connect(fd, to: path)
        guard connected else {
            return .failure(ClientError(description: "cannot connect to \(path): \(String(cString: strerror(errno))) (is tcp-fallback running with -control \(path)?)"))
        }
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let request = Array((line + "\n").utf8)
        guard request.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == request.count else {
            return .failure(ClientError(description: "cannot send to \(path): \(String(cString: strerror(errno)))"))
        }
        shutdown(fd, Int32(SHUT_WR))
        var answer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                answer += chunk[0..<n]
            } else if n == 0 {
                break
            } else if errno != EINTR {
                return .failure(ClientError(description: "no answer from \(path): \(String(cString: strerror(errno)))"))
            }
        }
        return .success(String(decoding: answer, as: UTF8.self))
    }
}
