import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The built `tcp-fallback` binary run as a child process, with its standard error captured.
public final class ProxyProcess: @unchecked Sendable {
    public let process = Process()
    private let errorPipe = Pipe()
    private let output = CapturedOutput()
    /// The port it listens on, read from its start-up line.
    public private(set) var port = 0

    /// The binary next to the test bundle (`swift build --build-tests` builds both).
    public static var binary: URL {
        let here = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for directory in [here, here.deletingLastPathComponent()] {
            let candidate = directory.appendingPathComponent("tcp-fallback")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/tcp-fallback")
    }

    /// Starts the binary with `arguments`; with `waitForListening`, returns once it listens.
    /// - Parameters:
    ///   - environment: variables added to this process's environment.
    ///   - journalStream: set `JOURNAL_STREAM` to the standard error pipe, as systemd does
    ///     when standard error is connected to the journal.
    public init(
        _ arguments: [String], waitForListening: Bool = true, environment: [String: String] = [:],
        executable: URL? = nil, journalStream: Bool = false
    ) throws {
        process.executableURL = executable ?? Self.binary
        process.arguments = arguments
        var variables = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        for name in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "JOURNAL_STREAM"]
        where environment[name] == nil {
            variables[name] = nil
        }
        if journalStream {
            var status = stat()
            fstat(errorPipe.fileHandleForWriting.fileDescriptor, &status)
            variables["JOURNAL_STREAM"] = "\(status.st_dev):\(status.st_ino)"
        }
        process.environment = variables
        process.standardError = errorPipe
        process.standardOutput = errorPipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Read by a thread of its own with plain blocking reads until the end of the stream,
        // not through readabilityHandler: a dispatch source whose descriptor is closed while
        // it is registered (a pipe released as the process object goes) can crash the test
        // process in libdispatch's event loop. The parent's copy of the write end is closed,
        // so the stream ends when the child (and anything it started) exits.
        try? errorPipe.fileHandleForWriting.close()
        output.startReading(errorPipe.fileHandleForReading)
        if waitForListening {
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline {
                if let port = listeningPort() {
                    self.port = port
                    // The control socket and the metrics endpoint open just after the listener.
                    if arguments.contains("-control") { _ = waitForLog("control socket at") }
                    if arguments.contains("-metrics") { _ = waitForLog("/metrics") }
                    return
                }
                if !process.isRunning { break }
                usleep(10_000)
            }
            stop()
            throw ProcessError(message: "proxy did not start listening; output:\n\(log)")
        }
    }

    deinit { stop() }

    public struct ProcessError: Error, CustomStringConvertible {
        public let message: String
        public var description: String { message }

        public init(message: String) { self.message = message }
    }

    /// Everything the process wrote so far.
    public var log: String { output.text }

    private func listeningPort() -> Int? {
        guard let range = log.range(of: "listening on ") else { return nil }
        let rest = log[range.upperBound...].prefix(while: { $0 != ";" && $0 != " " })
        guard let colon = rest.lastIndex(of: ":") else { return nil }
        return Int(rest[rest.index(after: colon)...])
    }

    public var pid: Int32 { process.processIdentifier }

    public func signal(_ number: Int32) { kill(pid, number) }

    /// Waits for the process to exit; returns its status, or nil on timeout.
    public func waitForExit(timeout: Double = 10) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { return nil }
        return process.terminationStatus
    }

    /// Open file descriptors of the process.
    public var openDescriptors: Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    }

    /// What each open descriptor of the process points at, for failure messages.
    public var descriptorTargets: [String] {
        let directory = "/proc/\(pid)/fd"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.sorted().map { name in
            "\(name)->" + ((try? FileManager.default.destinationOfSymbolicLink(atPath: directory + "/" + name)) ?? "?")
        }
    }

    /// Resident memory of the process, in bytes.
    public var residentBytes: Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return -1 }
        return (Int(line.split(separator: " ")[1]) ?? 0) * 1024
    }

    /// Waits until the log contains `text`.
    /// `waitForLog` for async tests: polls without holding a thread of the shared pool.
    public func logShows(_ text: String, timeout: Duration = .seconds(10)) async -> Bool {
        await eventually(timeout: timeout) { log.contains(text) }
    }

    public func waitForLog(_ text: String, timeout: Double = 10) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if log.contains(text) { return true }
            usleep(10_000)
        }
        return log.contains(text)
    }

    public func stop() {
        if process.isRunning {
            process.terminate()
            if waitForExit(timeout: 5) == nil { kill(pid, SIGKILL) }
        }
    }
}

/// What a child process writes, read to its end by a thread that owns the read end.
final class CapturedOutput: @unchecked Sendable {
    private let lock = NSLock()
    private var captured = ""

    var text: String { lock.withLock { captured } }

    /// Reads `handle` until the end of its stream; the thread keeps the handle (and so its
    /// descriptor) alive until then.
    func startReading(_ handle: FileHandle) {
        let thread = Thread { [self] in
            let fd = handle.fileDescriptor
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count > 0 {
                    let chunk = String(decoding: buffer[0..<count], as: UTF8.self)
                    lock.withLock { captured += chunk }
                } else if count < 0 && errno == EINTR {
                    continue
                } else {
                    break
                }
            }
            _ = handle  // kept open until the end of the stream
        }
        thread.start()
    }
}

/// Runs the binary to completion and returns its exit status and combined output.
public func runProxyBinary(_ arguments: [String]) throws -> (status: Int32, output: String) {
    try runProcess(ProxyProcess.binary.path, arguments)
}

/// Runs any program to completion; returns its exit status and combined output.
public func runProcess(
    _ executable: String, _ arguments: [String], environment: [String: String] = [:]
) throws -> (status: Int32, output: String) {
    let process = Process()
    let pipe = Pipe()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    process.standardError = pipe
    process.standardOutput = pipe
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}
