import CDataPath

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How many data loops to run: one per CPU the process may use, capped by `-maxthreads`.
/// More loops than CPUs only time-share them: each wake-up then waits for another loop's
/// turn, which shows as latency (measured: p99 17x HAProxy's with 4 loops on 1 CPU).
enum DataLoopCount {
    /// CPUs the process may use: its affinity mask (taskset, CPUAffinity=), and the cgroup's
    /// CPU quota where one is set (cpu.max, as containers and CPUQuota= set it), rounded up.
    static func availableCPUs() -> Int {
        var cpus = Int(tf_available_cpus())
        if cpus < 1 { cpus = 1 }
        if let quota = cgroupQuota() { cpus = min(cpus, quota) }
        return max(cpus, 1)
    }

    /// `min(available CPUs, cap)`, at least 1.
    static func loops(cap: Int) -> Int {
        max(1, min(availableCPUs(), cap))
    }

    /// The CPU limit of this process's cgroup (v2), in whole CPUs rounded up; nil when none.
    static func cgroupQuota() -> Int? {
        guard let membership = readSmallFile("/proc/self/cgroup") else { return nil }
        // cgroup v2: one line "0::/path".
        guard let line = membership.split(separator: "\n").first(where: { $0.hasPrefix("0::") }) else { return nil }
        let path = String(line.dropFirst(3))
        guard let text = readSmallFile("/sys/fs/cgroup\(path == "/" ? "" : path)/cpu.max") else { return nil }
        return parseCPUMax(text)
    }

    /// Reads `cpu.max` ("max 100000" or "150000 100000"): quota / period, rounded up.
    static func parseCPUMax(_ text: String) -> Int? {
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard fields.count >= 2, fields[0] != "max", let quota = Int(fields[0]), let period = Int(fields[1]),
            quota > 0, period > 0
        else { return nil }
        return (quota + period - 1) / period
    }

    private static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 4096)
        let count = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        return String(decoding: bytes[0..<count], as: UTF8.self)
    }
}
