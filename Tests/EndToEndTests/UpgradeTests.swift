import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// An upgrade: a new process takes the listening sockets over (`-take-over`) while clients
/// keep connecting; none is refused, and the old process's connections finish before it exits.
@Suite struct UpgradeTests {
    @Test func aNewProcessTakesTheSocketsOverWithoutRefusingAClient() async throws {
        let directory = try TemporaryDirectory()
        let control = directory.file("control.sock")
        // The held connection may stay silent long on a loaded machine: the backend waits.
        let backend = try TestServer.echo(idleLimit: 120)
        // -close-on-down=false: a connect failure under this load must not close the held
        // connection; what is tested is the hand-over.
        // A long grace: on a loaded machine this test's task may wait seconds for a thread,
        // and the old process must still hold the connection when it gets one.
        let old = try ProxyProcess(["-control", control, "-shutdown-grace", "60s", "-close-on-down=false", "127.0.0.1:0", "127.0.0.1:\(backend.port)"])
        let port = old.port

        // A connection the old process holds across the upgrade.
        let held = try TestSocket.connect(port: port)
        defer { held.close() }
        try held.send("a")
        #expect(try held.receive(exactly: 1) == Array("a".utf8))

        // Clients connecting all along: each sends a byte and must get it back.
        let load = EchoLoad(port: port)
        try await Task.sleep(for: .milliseconds(300))

        let new = try ProxyProcess(["-take-over", control, "-control", control, "127.0.0.1:\(port)", "127.0.0.1:\(backend.port)"])
        #expect(new.port == port)
        #expect(await new.logShows("took the listening sockets over from the process at \(control), which is retiring"), "\(new.log)")
        #expect(new.log.contains("(sockets taken over from the process at \(control))"), "\(new.log)")
        #expect(await old.logShows("retiring at the request of the process that took the listening sockets over"), "\(old.log)")
        try await Task.sleep(for: .milliseconds(500))

        // The old process still relays the held connection, then exits once it closes.
        try held.send("b")
        #expect(try held.receive(exactly: 1) == Array("b".utf8), "\(old.log)")
        #expect(old.process.isRunning, "\(old.log)")
        held.close()
        #expect(await eventually(timeout: .seconds(20)) { !old.process.isRunning }, "\(old.log)")
        #expect(old.waitForExit(timeout: 1) == 0, "\(old.log)")

        try await Task.sleep(for: .milliseconds(300))
        let (served, failed) = await load.stop()
        #expect(failed.isEmpty, "\(failed.count) clients failed: \(failed.prefix(5))")
        #expect(served > 20, "only \(served) clients served")
        // The new process answers on the same control socket.
        let (status, shown) = try runProxyBinary(["ctl", "-control", control, "show", "backends"])
        #expect(status == 0 && shown.contains("127.0.0.1:\(backend.port)"), "\(shown)")
        new.stop()
    }

    /// `ctl upgrade`: the process starts its own binary anew, which takes the sockets over; the
    /// old one tells systemd the new one is the main process and retires without STOPPING=1.
    @Test func ctlUpgradeStartsTheBinaryAnewAsTheServicesMainProcess() async throws {
        let directory = try TemporaryDirectory()
        let control = directory.file("control.sock")
        let notify = try DatagramListener(path: directory.file("notify"))
        let backend = try TestServer.echo(idleLimit: 120)
        let old = try ProxyProcess(
            ["-control", control, "-shutdown-grace", "30s", "-close-on-down=false", "127.0.0.1:0", "127.0.0.1:\(backend.port)"],
            environment: ["NOTIFY_SOCKET": notify.path])
        let port = old.port
        let held = try TestSocket.connect(port: port)
        defer { held.close() }
        try held.send("a")
        #expect(try held.receive(exactly: 1) == Array("a".utf8))

        let load = EchoLoad(port: port)
        try await Task.sleep(for: .milliseconds(300))

        let (status, answer) = try runProxyBinary(["ctl", "-control", control, "upgrade"])
        #expect(status == 0 && answer.hasPrefix("PID "), "\(answer)")
        let newPID = try #require(Int32(answer.split(separator: "PID ").last?.prefix(while: { $0.isNumber }) ?? ""), "\(answer)")
        defer {
            // The new process is the old one's child, re-parented once it exits: stop it here.
            kill(newPID, SIGTERM)
            for _ in 0..<500 where kill(newPID, 0) == 0 { usleep(10_000) }
        }
        // The old (main) process names the new one the main process, which then says it is ready;
        // the old one retires in silence.
        #expect(notify.waitFor(timeout: 20) { $0 == "MAINPID=\(newPID)" } != nil, "\(notify.messages)\n\(old.log)")
        #expect(notify.waitFor(timeout: 20) { _ in notify.messages.filter { $0.hasPrefix("READY=1") }.count == 2 } != nil, "\(notify.messages)")
        #expect(answer.contains("took the listening sockets over; this process retires"), "\(answer)")
        #expect(await old.logShows("retiring at the request of the process that took the listening sockets over"), "\(old.log)")
        try held.send("b")
        #expect(try held.receive(exactly: 1) == Array("b".utf8), "\(old.log)")
        held.close()
        #expect(await eventually(timeout: .seconds(30)) { !old.process.isRunning }, "\(old.log)")
        #expect(old.waitForExit(timeout: 1) == 0, "\(old.log)")
        #expect(!notify.messages.contains { $0.hasPrefix("STOPPING=1") }, "\(notify.messages)")
        #expect(kill(newPID, 0) == 0, "the new process is gone: \(old.log)")

        try await Task.sleep(for: .milliseconds(300))
        let (served, failed) = await load.stop()
        #expect(failed.isEmpty, "\(failed.count) clients failed: \(failed.prefix(5))")
        #expect(served > 20, "only \(served) clients served")
        let (shown, backends) = try runProxyBinary(["ctl", "-control", control, "show", "backends"])
        #expect(shown == 0 && backends.contains("127.0.0.1:\(backend.port)"), "\(backends)")
    }

    @Test func aTakeOverWithoutARunningProcessFailsClearly() throws {
        let directory = try TemporaryDirectory()
        let (status, output) = try runProxyBinary(["-take-over", directory.file("none.sock"), "127.0.0.1:0", "127.0.0.1:1"])
        #expect(status == 1)
        #expect(output.contains("cannot connect to \(directory.file("none.sock"))"), "\(output)")
    }
}
