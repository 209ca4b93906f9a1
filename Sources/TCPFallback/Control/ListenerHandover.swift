import CDataPath

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An upgrade without a refused connection: a new process takes the listening sockets over
/// from the running one, through its control socket.
///
/// 1. The new process listens on a private unix socket (in a fresh 0700 directory) and sends
///    `hand-over PATH` to the old one's control socket.
/// 2. The old process connects to PATH and passes every listening socket (SCM_RIGHTS): from
///    then on both accept on the same sockets, so no connection is refused or lost in a
///    queue.
/// 3. The new process serves them, and once ready sends `retire PID`: the old one tells
///    systemd that PID is the main process now, stops accepting, lets its connections finish
///    within -shutdown-grace and exits, as on SIGTERM. Its control socket goes first, so the
///    new process can open its own at the same path.
public enum ListenerHandover {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// One socket passed, with the listener it served (nil from a version that did not say).
    public struct Socket: Sendable {
        public let descriptor: Int32
        public let listener: String?
    }

    /// How the answer to `hand-over` starts the line that names each socket's listener.
    static let listenersLinePrefix = "listeners: "

    /// Old process: passes `fds` to the new process listening at `path`.
    static func send(_ fds: [Int32], to path: String) throws(Failure) {
        guard !fds.isEmpty else { throw Failure(description: "no listening socket to hand over (not started, or stopping)") }
        let fd = socket(AF_UNIX, SocketFlags.stream | SocketFlags.closeOnExec, 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(ConnectFailure.errnoText(errno))") }
        defer { close(fd) }
        guard UnixSocketAddress.connect(fd, to: path) else {
            throw Failure(description: "cannot reach \"\(path)\": \(ConnectFailure.errnoText(errno))")
        }
        var start = 0
        while start < fds.count {
            let batch = Array(fds[start..<min(start + Int(TF_DESCRIPTORS_PER_MESSAGE), fds.count)])
            let result = batch.withUnsafeBufferPointer { tf_send_descriptors(fd, $0.baseAddress, Int32($0.count)) }
            guard result == 0 else { throw Failure(description: "cannot pass the sockets: \(ConnectFailure.errnoText(-result))") }
            start += batch.count
        }
    }

    /// New process: asks the process whose control socket is `controlPath` for its listening
    /// sockets and returns this process's descriptors for them.
    public static func takeOver(from controlPath: String, timeout: Int = 10) throws(Failure) -> [Socket] {
        // A private directory of its own (0700), as the control socket's staging uses.
        guard let staging = PrivateSocketPath(for: "/tmp/tcp-fallback-handover") else {
            throw Failure(description: "cannot make a private directory in /tmp: \(ConnectFailure.errnoText(errno))")
        }
        let path = staging.socket
        defer { staging.remove() }
        let listener = socket(AF_UNIX, SocketFlags.stream | SocketFlags.closeOnExec, 0)
        guard listener >= 0 else { throw Failure(description: "socket: \(ConnectFailure.errnoText(errno))") }
        defer { close(listener) }
        guard UnixSocketAddress.bind(listener, to: path), listen(listener, 1) == 0 else {
            throw Failure(description: "cannot listen on \"\(path)\": \(ConnectFailure.errnoText(errno))")
        }
        // The old process connects and passes the sockets before it answers: the connection
        // waits in the backlog until it is accepted below.
        let answer: ControlExchange.Answer
        do {
            answer = try ControlExchange.send("hand-over \(path)", to: controlPath, timeout: timeout)
        } catch {
            throw Failure(description: error.description)
        }
        guard answer.ok else {
            throw Failure(description: "the running process refused to hand its sockets over: \(answer.text)")
        }
        var ready = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        guard poll(&ready, 1, Int32(timeout * 1000)) == 1 else { throw Failure(description: "the running process did not pass its sockets") }
        let connection = accept(listener, nil, nil)
        guard connection >= 0 else { throw Failure(description: "accept: \(ConnectFailure.errnoText(errno))") }
        defer { close(connection) }
        var limit = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var received: [Int32] = []
        var batch = [Int32](repeating: -1, count: Int(TF_DESCRIPTORS_PER_MESSAGE))
        while true {
            let count = batch.withUnsafeMutableBufferPointer { tf_receive_descriptors(connection, $0.baseAddress, Int32($0.count)) }
            if count == 0 { break }
            guard count > 0 else {
                for fd in received { close(fd) }
                throw Failure(description: "cannot receive the sockets: \(ConnectFailure.errnoText(-count))")
            }
            received += batch[0..<Int(count)]
        }
        guard !received.isEmpty else { throw Failure(description: "the running process passed no socket") }
        // The answer's "listeners:" line names them in order (when the old version says).
        let names = answer.text.split(separator: "\n").first { $0.hasPrefix(listenersLinePrefix) }
            .map { $0.dropFirst(listenersLinePrefix.count).split(separator: " ").map(String.init) } ?? []
        return received.enumerated().map { index, fd in Socket(descriptor: fd, listener: names.count == received.count ? names[index] : nil) }
    }

    /// New process, once it serves the sockets: asks the old one to retire, naming this process
    /// (`pid`) as the service's main process from now on, and waits until its control socket
    /// is gone (it closes it first), so this process can open its own.
    public static func retire(_ controlPath: String, pid: Int32, timeout: Int = 10) throws(Failure) {
        let answer: ControlExchange.Answer
        do {
            answer = try ControlExchange.send("retire \(pid)", to: controlPath, timeout: timeout)
        } catch {
            throw Failure(description: error.description)
        }
        guard answer.ok else { throw Failure(description: "the running process did not retire: \(answer.text)") }
        for _ in 0..<(timeout * 100) {
            if !ControlExchange.answers(controlPath) { return }
            usleep(10_000)
        }
        throw Failure(description: "the running process still answers on \(controlPath) after \(timeout)s")
    }
}
