import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// CPU profiles of the running binary, read back with `go tool pprof` (Debian golang-go,
/// installed by the test command).
@Suite(.serialized) struct ProfilerTests {
    static let goTool: String? = ["/usr/bin/go", "/usr/lib/go/bin/go"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Pushes `megabytes` through the proxy at `port` to give the profiler something to see.
    static func load(port: Int, megabytes: Int) throws {
        let client = try TestSocket.connect(port: port, timeout: 30)
        defer { client.close() }
        Thread { client.sendPseudoRandom(seed: 9, count: megabytes << 20) }.start()
        _ = try client.receiveChecksum()
    }

    /// Every function sampled, however rarely: by default pprof leaves out those in less than
    /// 0.5% of the samples, as the relay's own functions can be (see below).
    static func top(_ profile: String) throws -> String {
        let (status, output) = try runProcess(
            goTool!, ["tool", "pprof", "-top", "-nodecount=0", "-nodefraction=0", "-edgefraction=0", ProxyProcess.binary.path, profile])
        #expect(status == 0, "\(output)")
        return output
    }

    @Test(.enabled(if: ProfilerTests.goTool != nil, "go (Debian golang-go) is not installed; Scripts/test.sh installs it"))
    func aProfileTakenUnderLoadNamesTheProxysOwnFunctions() throws {
        let directory = try TemporaryDirectory()
        let profile = directory.file("cpu.pprof")
        let backend = try TestServer.echo()
        // Copied, not spliced: the relay's own functions then do the work the samples catch
        // (spliced bytes move inside the kernel, under a few calls).
        let proxy = try ProxyProcess(["-cpuprofile", profile, "-splice=false", "127.0.0.1:0", "127.0.0.1:\(backend.port)"])
        func written() -> Int { proxy.log.split(separator: "\n").filter { $0.contains("wrote CPU profile \(profile)") }.count }

        // Only a few samples in 400 MB have the relay's own functions in their stack, and now and
        // then none: most of its time is spent in system calls, whose samples lose their callers
        // where the wrapper keeps other data in the frame pointer register (glibc's splice, a
        // sanitizer's read and write). Load again, at most twice more, until pump (which only
        // service calls) was sampled.
        var rounds = 0
        repeat {
            try Self.load(port: proxy.port, megabytes: 400)
            rounds += 1
            // On demand, without stopping.
            proxy.signal(SIGUSR2)
            let deadline = ContinuousClock.now + .seconds(10)
            while written() < rounds && ContinuousClock.now < deadline { usleep(10_000) }
            #expect(written() == rounds, "\(proxy.log)")
        } while try rounds < 3 && !Self.top(profile).contains("TCPFallback.DataLoop.(pump in")
        #expect(proxy.process.isRunning)

        proxy.signal(SIGTERM)
        #expect(proxy.waitForExit() == 0)
        #expect(written() == rounds + 1, "\(proxy.log)")

        let output = try Self.top(profile)
        #expect(output.contains("Type: cpu"))
        // The data loop and its relay, by their demangled Swift names.
        #expect(output.contains("TCPFallback.DataLoop.run()"), "\(output)")
        #expect(output.contains("TCPFallback.DataLoop.(service in"), "\(output)")
        #expect(output.contains("TCPFallback.DataLoop.(pump in"), "\(output)")
        #expect(!output.contains("??"))
        #expect(!output.contains("$s11TCPFallback"), "mangled names left: \(output)")
    }

    @Test(.enabled(if: ProfilerTests.goTool != nil, "go (Debian golang-go) is not installed; Scripts/test.sh installs it"))
    func theControlSocketStartsAndStopsAProfile() throws {
        let directory = try TemporaryDirectory()
        let profile = directory.file("on-demand.pprof")
        let socketPath = directory.file("control.sock")
        let backend = try TestServer.echo()
        // Copied, not spliced, as in the test above: the loop's own frames are then sampled.
        let proxy = try ProxyProcess(["-control", socketPath, "-splice=false", "127.0.0.1:0", "127.0.0.1:\(backend.port)"])
        defer { proxy.stop() }

        let (stopStatus, notRunning) = try runProxyBinary(["ctl", "-control", socketPath, "profile", "stop"])
        #expect(stopStatus == 1)
        #expect(notRunning.contains("no CPU profile is being taken"))

        let (startStatus, started) = try runProxyBinary(["ctl", "-control", socketPath, "profile", "start", profile])
        #expect(startStatus == 0, "\(started)")
        #expect(started.contains("CPU profile started"))
        let (_, again) = try runProxyBinary(["ctl", "-control", socketPath, "profile", "start", profile])
        #expect(again.contains("already being written"))

        // On a loaded machine a round may catch none of the loop's own frames: load again, at
        // most twice more, writing the profile so far each time.
        func written() -> Int { proxy.log.split(separator: "\n").filter { $0.contains("wrote CPU profile \(profile)") }.count }
        var rounds = 0
        repeat {
            try Self.load(port: proxy.port, megabytes: 200)
            rounds += 1
            proxy.signal(SIGUSR2)  // the profile so far, to look at
            let deadline = ContinuousClock.now + .seconds(10)
            while written() < rounds && ContinuousClock.now < deadline { usleep(10_000) }
        } while try rounds < 3 && !Self.top(profile).contains("TCPFallback.DataLoop")
        let (status, stopped) = try runProxyBinary(["ctl", "-control", socketPath, "profile", "stop"])
        #expect(status == 0, "\(stopped)")
        #expect(stopped.contains("wrote CPU profile \(profile)"))
        #expect(try Self.top(profile).contains("TCPFallback.DataLoop"))
    }

    @Test func anUnwritableProfileIsRefusedAtStartUp() throws {
        let (status, output) = try runProxyBinary(["-cpuprofile", "/nonexistent-dir/p.pprof", "127.0.0.1:0", "127.0.0.1:1"])
        #expect(status == 1)
        #expect(output.contains("cannot write profile \"/nonexistent-dir/p.pprof\": no such file or directory"), "\(output)")
    }
}
