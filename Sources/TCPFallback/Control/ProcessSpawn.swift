import CDataPath

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Starts a program with `posix_spawn` (through `tf_spawn`, spawn.c) and reaps it: for an upgrade, where this process starts
/// the new binary itself (`ctl upgrade`), so that it runs in the same service (cgroup).
///
/// Unsafe code, kept here: the argument and environment arrays are C strings made with
/// `strdup`, each freed once `posix_spawn` returned (it copies them into the child before it
/// returns); the arrays end with a null pointer, as `execve` needs. The child gets standard
/// input, output and error only: every other descriptor is closed in it before the program
/// starts (not all of them are close-on-exec: a control connection the child kept would hold
/// its client's answer open).
public enum ProcessSpawn {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Starts `executable` with `arguments` (not including the program name, which is
    /// `executable`) and `environment` (`NAME=value` strings); returns its PID.
    public static func spawn(_ executable: String, arguments: [String], environment: [String]) throws(Failure) -> pid_t {
        let argv = ([executable] + arguments).map { strdup($0) }
        let envp = environment.map { strdup($0) }
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let result = (argv + [nil]).withUnsafeBufferPointer { argvBuffer in
            (envp + [nil]).withUnsafeBufferPointer { envpBuffer in
                tf_spawn(&pid, executable, argvBuffer.baseAddress!, envpBuffer.baseAddress!)
            }
        }
        guard result == 0 else { throw Failure(description: "cannot start \(executable): \(ConnectFailure.errnoText(result))") }
        return pid
    }

    /// This process's environment, without the variables named in `removing`.
    public static func environment(removing names: Set<String>) -> [String] {
        var result: [String] = []
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            let name = String(text.prefix(while: { $0 != "=" }))
            if !names.contains(name) { result.append(text) }
            pointer += 1
        }
        return result
    }

    /// Waits, on a thread of its own, for `pid` to exit, and calls `exited` with its status
    /// (the exit status, or 128 + the signal that ended it). If this process ends first, so
    /// does the wait.
    public static func whenExits(_ pid: pid_t, _ exited: @escaping @Sendable (Int32) -> Void) {
        let thread = try? LoopThread(name: "tf-reaper") {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            let code = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
            exited(code)
        }
        thread?.detach()
    }

    /// The path of this process's executable, read at start-up: after a package replaces the
    /// binary, the same path starts the new one.
    public static func currentExecutable() -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        var path = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if path.hasSuffix(" (deleted)") { path.removeLast(" (deleted)".count) }
        return path
    }
}
