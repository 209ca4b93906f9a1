import Foundation
import Testing
import TestSupport

/// The units' sandbox: systemd rates their exposure, and the proxy does its whole job inside
/// their system call filter (applied by Scripts/seccomp-exec.py as systemd applies it).
@Suite struct UnitHardeningTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let analyze = "/usr/bin/systemd-analyze"
    static var seccompAvailable: Bool {
        FileManager.default.isExecutableFile(atPath: analyze)
            && (try? runProcess("/usr/bin/python3", ["-c", "import seccomp"]).status) == 0
    }

    @Test(
        .enabled(if: FileManager.default.isExecutableFile(atPath: analyze), "systemd-analyze is not installed"),
        arguments: ["tcp-fallback.service", "tcp-fallback@.service", "tcp-fallback-config.service"])
    func theExposureIsAtMostTwo(unit: String) throws {
        let (_, output) = try runProcess(Self.analyze, ["security", "--offline=true", Self.root.appendingPathComponent("contrib/\(unit)").path])
        let line = try #require(output.split(separator: "\n").first { $0.contains("Overall exposure level") }, "\(output)")
        let level = try #require(Double(line.split(separator: ":").last!.split(separator: " ").first!), "\(line)")
        #expect(level <= 2.0, "\(line)")
    }

    @Test(.enabled(if: UnitHardeningTests.seccompAvailable, "python3-seccomp is not installed; Scripts/test.sh installs it"))
    func theProxyWorksInsideTheUnitsSystemCallFilter() throws {
        let directory = try TemporaryDirectory()
        let control = directory.file("control.sock")
        let backend = try TestServer.echo()
        let unit = Self.root.appendingPathComponent("contrib/tcp-fallback.service").path
        let proxy = try ProxyProcess(
            [unit, "--", ProxyProcess.binary.path, "-control", control, "-metrics", "127.0.0.1:0", "-cpuprofile", directory.file("cpu.pprof"),
             "-check-interval", "100ms", "127.0.0.1:0", "127.0.0.1:\(backend.port)"],
            executable: Self.root.appendingPathComponent("Scripts/seccomp-exec.py"))
        defer { proxy.stop() }
        // The filter is on: a call outside it fails in the proxy's process.
        let (_, filter) = try runProcess("/usr/bin/grep", ["Seccomp:", "/proc/\(proxy.pid)/status"])
        #expect(filter.contains("Seccomp:\t2"), "\(filter)")

        // Bytes both ways, spliced and copied; the control socket; stats; a profile.
        let size = 8 * 1024 * 1024
        let client = try TestSocket.connect(port: proxy.port, timeout: 30)
        defer { client.close() }
        Thread { client.sendPseudoRandom(seed: 9, count: size) }.start()
        #expect(try client.receiveChecksum() == Checksum(pseudoRandomSeed: 9, count: size))
        let (status, backends) = try runProxyBinary(["ctl", "-control", control, "show", "backends"])
        #expect(status == 0, "\(backends)")
        proxy.signal(SIGUSR1)
        #expect(proxy.waitForLog("stats backend"))
        proxy.signal(SIGTERM)
        #expect(proxy.waitForExit() == 0)
        #expect(proxy.log.contains("wrote CPU profile"))
        #expect(!proxy.log.lowercased().contains("operation not permitted"), "\(proxy.log)")
    }

    /// `ctl upgrade` inside the filter: the new binary is started (posix_spawn, close_range,
    /// execve), takes the sockets over under the same filter, and serves.
    @Test(.enabled(if: UnitHardeningTests.seccompAvailable, "python3-seccomp is not installed; Scripts/test.sh installs it"))
    func anUpgradeWorksInsideTheUnitsSystemCallFilter() async throws {
        let directory = try TemporaryDirectory()
        let control = directory.file("control.sock")
        let backend = try TestServer.naming("a")
        let unit = Self.root.appendingPathComponent("contrib/tcp-fallback-config.service").path
        let proxy = try ProxyProcess(
            [unit, "--", ProxyProcess.binary.path, "-control", control, "127.0.0.1:0", "127.0.0.1:\(backend.port)"],
            executable: Self.root.appendingPathComponent("Scripts/seccomp-exec.py"))
        defer { proxy.stop() }
        let (status, answer) = try runProxyBinary(["ctl", "-control", control, "upgrade"])
        #expect(status == 0, "\(answer)")
        let newPID = try #require(Int32(answer.split(separator: "PID ").last?.prefix(while: { $0.isNumber }) ?? ""), "\(answer)")
        defer {
            kill(newPID, SIGTERM)
            for _ in 0..<500 where kill(newPID, 0) == 0 { usleep(10_000) }
        }
        #expect(await eventually(timeout: .seconds(20)) { !proxy.process.isRunning }, "\(proxy.log)")
        #expect(proxy.waitForExit(timeout: 1) == 0, "\(proxy.log)")
        let (_, filter) = try runProcess("/usr/bin/grep", ["Seccomp:", "/proc/\(newPID)/status"])
        #expect(filter.contains("Seccomp:\t2"), "\(filter)")
        #expect(try TestSocket.backendName(viaProxyAt: proxy.port) == "a", "\(proxy.log)")
        #expect(!proxy.log.lowercased().contains("operation not permitted"), "\(proxy.log)")
    }
}
