import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The binary under a (fake) service manager: notify socket, watchdog, socket activation.
@Suite struct SystemdTests {
    @Test func notifiesReadinessStatusReloadAndStopping() throws {
        let directory = try TemporaryDirectory()
        let notify = try DatagramListener(path: directory.file("notify"))
        defer { notify.close() }
        let dead = try refusingPort()
        let backend = try TestServer.naming("b")
        let proxy = try ProxyProcess(
            ["127.0.0.1:0", "127.0.0.1:\(dead)", "127.0.0.1:\(backend.port)"],
            environment: ["NOTIFY_SOCKET": notify.path])
        defer { proxy.stop() }

        // READY=1 comes once the port accepts, with the first status.
        let ready = try #require(notify.waitFor { $0.contains("READY=1") })
        #expect(try TestSocket.connect(port: proxy.port).receiveToEnd() == Array("b".utf8))
        #expect(ready.contains("STATUS=serving via 127.0.0.1:\(dead) (2 of 2 backends up)"), "\(ready)")

        // The refused backend goes down: the status says where new clients go now.
        #expect(notify.waitFor { $0.contains("STATUS=serving via 127.0.0.1:\(backend.port) (1 of 2 backends up)") } != nil,
                "\(notify.messages)")

        // A log reopen is a reload.
        proxy.signal(SIGHUP)
        let reloading = try #require(notify.waitFor { $0.hasPrefix("RELOADING=1") })
        #expect(reloading.contains("MONOTONIC_USEC="))
        #expect(notify.waitFor { _ in notify.messages.filter { $0.hasPrefix("READY=1") }.count == 2 } != nil)

        proxy.signal(SIGTERM)
        #expect(notify.waitFor { $0 == "STOPPING=1" } != nil)
        #expect(proxy.waitForExit() == 0)
    }

    @Test func readyComesOnlyAfterTheListenerAccepts() throws {
        let directory = try TemporaryDirectory()
        let notify = try DatagramListener(path: directory.file("notify"))
        defer { notify.close() }
        let backend = try TestServer.naming("b")
        let proxy = try ProxyProcess(
            ["127.0.0.1:0", "127.0.0.1:\(backend.port)"], waitForListening: false,
            environment: ["NOTIFY_SOCKET": notify.path])
        defer { proxy.stop() }
        #expect(notify.waitFor { $0.contains("READY=1") } != nil)
        // The start-up line names the port (written before READY is sent; this test reads it
        // through a pipe, which may lag), and the port accepts.
        #expect(proxy.waitForLog("listening on 127.0.0.1:"))
        let line = try #require(proxy.log.split(separator: "\n").first { $0.contains("listening on 127.0.0.1:") })
        let port = try #require(Int(line.split(separator: ";")[0].split(separator: ":").last!))
        #expect(try TestSocket.connect(port: port).receiveToEnd() == Array("b".utf8))
    }

    @Test func pingsTheWatchdogAtHalfItsInterval() throws {
        let directory = try TemporaryDirectory()
        let notify = try DatagramListener(path: directory.file("notify"))
        defer { notify.close() }
        let backend = try TestServer.naming("b")
        let proxy = try ProxyProcess(
            ["127.0.0.1:0", "127.0.0.1:\(backend.port)"],
            environment: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "200000"])
        defer { proxy.stop() }
        _ = notify.waitFor { $0 == "WATCHDOG=1" }
        usleep(1_000_000)
        let pings = notify.timedMessages.filter { $0.text == "WATCHDOG=1" }
        // Every 100ms: about ten in the second after the first.
        #expect((8...14).contains(pings.count - 1), "\(pings.count) pings")
        let gaps = zip(pings.dropFirst(), pings).map { $0.time.timeIntervalSince($1.time) }
        #expect(gaps.allSatisfy { $0 < 0.2 }, "\(gaps)")
    }

    @Test func noWatchdogPingsWithoutWatchdogUsec() throws {
        let directory = try TemporaryDirectory()
        let notify = try DatagramListener(path: directory.file("notify"))
        defer { notify.close() }
        let backend = try TestServer.naming("b")
        let proxy = try ProxyProcess(["127.0.0.1:0", "127.0.0.1:\(backend.port)"], environment: ["NOTIFY_SOCKET": notify.path])
        defer { proxy.stop() }
        _ = notify.waitFor { $0.contains("READY=1") }
        usleep(300_000)
        #expect(!notify.messages.contains("WATCHDOG=1"))
    }

    /// systemd-socket-activate (from the systemd package) listens, and starts the proxy with
    /// the listening socket when the first client connects.
    @Test(arguments: ["systemd", "127.0.0.1:PORT"])
    func servesTheSocketSystemdPasses(listen: String) throws {
        let backend = try TestServer.naming("activated")
        let port = try refusingPort()
        let activator = try ProxyProcess(
            ["-l", "127.0.0.1:\(port)", ProxyProcess.binary.path, listen.replacingOccurrences(of: "PORT", with: "\(port)"),
             "127.0.0.1:\(backend.port)"],
            waitForListening: false, executable: URL(fileURLWithPath: "/usr/bin/systemd-socket-activate"))
        defer { activator.stop() }
        #expect(activator.waitForLog("Listening on 127.0.0.1:\(port)"))
        #expect(try TestSocket.connect(port: port).receiveToEnd() == Array("activated".utf8))
        #expect(activator.waitForLog("listening on 127.0.0.1:\(port) (socket from systemd)"))
        // Served by the inherited socket, not a new one: a second client is served too.
        let second = try TestSocket.connect(port: port).receiveToEnd()
        #expect(second == Array("activated".utf8), "got \(second.count) bytes; log:\n\(activator.log)")
    }

    @Test func aPassedSocketThatMatchesNothingIsAnError() throws {
        let port = try refusingPort()
        let activator = try ProxyProcess(
            ["-l", "127.0.0.1:\(port)", ProxyProcess.binary.path, "127.0.0.1:1", "127.0.0.1:2"],
            waitForListening: false, executable: URL(fileURLWithPath: "/usr/bin/systemd-socket-activate"))
        defer { activator.stop() }
        #expect(activator.waitForLog("Listening on"))
        _ = try? TestSocket.connect(port: port, timeout: 2).receiveToEnd()
        #expect(activator.waitForExit() == 1)
        #expect(activator.log.contains("no inherited socket matches the listen address 127.0.0.1:1"), "\(activator.log)")
    }

    @Test func systemdAsListenAddressNeedsSocketActivation() throws {
        let (status, output) = try runProxyBinary(["systemd", "127.0.0.1:1"])
        #expect(status == 1)
        #expect(output.contains("needs socket activation"), "\(output)")
    }
}
