import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The control socket of the real binary, driven with `tcp-fallback ctl` and raw sockets.
@Suite struct ControlSocketTests {
    /// A proxy with a control socket in a fresh directory, and two naming backends.
    struct Fixture {
        let directory: TemporaryDirectory
        let first: TestServer
        let second: TestServer
        let proxy: ProxyProcess
        var socketPath: String { directory.file("control.sock") }

        init(extra: [String] = []) throws {
            directory = try TemporaryDirectory()
            first = try TestServer.naming("first")
            second = try TestServer.naming("second")
            proxy = try ProxyProcess(
                ["-control", directory.file("control.sock")] + extra
                    + ["127.0.0.1:0", "127.0.0.1:\(first.port)", "127.0.0.1:\(second.port)"])
            _ = proxy.waitForLog("control socket at")
        }

        func ctl(_ words: String...) throws -> (status: Int32, output: String) {
            try runProxyBinary(["ctl", "-control", socketPath] + words)
        }

        func backendName() throws -> String { try TestSocket.backendName(viaProxyAt: proxy.port) }
    }

    @Test func showBackendsAsTextAndJSON() throws {
        let fixture = try Fixture()
        #expect(try fixture.backendName() == "first")
        let (status, text) = try fixture.ctl("show", "backends")
        #expect(status == 0)
        let lines = text.split(separator: "\n")
        #expect(lines.count == 3, "\(text)")
        #expect(lines[0].hasPrefix("#  backend"))
        #expect(lines[1].contains("127.0.0.1:\(fixture.first.port)") && lines[1].contains("up     yes"), "\(text)")

        let (jsonStatus, json) = try fixture.ctl("show", "backends", "--json")
        #expect(jsonStatus == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(object["ok"] as? Bool == true)
        let backends = try #require(object["backends"] as? [[String: Any]])
        #expect(backends.count == 2)
        #expect(backends[0]["in_use"] as? Bool == true)
        #expect(backends[0]["connections_total"] as? Int == 1)
        #expect(backends[0]["bytes_to_client"] as? Int == 5)
        #expect(backends[1]["state"] as? String == "up")
        #expect(backends[1]["in_use"] as? Bool == false)
    }

    @Test func disableEnableAndFailback() throws {
        let fixture = try Fixture()
        let (status, output) = try fixture.ctl("disable", "127.0.0.1:\(fixture.first.port)")
        #expect(status == 0, "\(output)")
        #expect(output.contains("is disabled"))
        #expect(try fixture.backendName() == "second")
        #expect(try fixture.backendName() == "second")
        #expect(fixture.proxy.log.contains("backend 127.0.0.1:\(fixture.first.port) is now disabled by an operator"))

        // Backends can be named by index too.
        #expect(try fixture.ctl("enable", "0").status == 0)
        #expect(try fixture.backendName() == "first")

        #expect(try fixture.ctl("drain", "0").status == 0)
        #expect(try fixture.backendName() == "second")
        let (_, failback) = try fixture.ctl("failback", "0")
        #expect(failback.contains("is back in rotation"))
        #expect(try fixture.backendName() == "first")
        let (_, notHeld) = try fixture.ctl("failback", "0")
        #expect(notHeld.contains("is not held"))
    }

    @Test func drainKeepsOpenConnectionsAndShutdownSessionsClosesThem() throws {
        let directory = try TemporaryDirectory()
        let echo = try TestServer.echo()
        let other = try TestServer.naming("other")
        let path = directory.file("control.sock")
        let proxy = try ProxyProcess(["-control", path, "127.0.0.1:0", "127.0.0.1:\(echo.port)", "127.0.0.1:\(other.port)"])
        _ = proxy.waitForLog("control socket at")
        let open = try TestSocket.connect(port: proxy.port)
        try open.send("a")
        #expect(try open.receiveString(exactly: 1) == "a")

        let (_, drained) = try runProxyBinary(["ctl", "-control", path, "drain", "127.0.0.1:\(echo.port)"])
        #expect(drained.contains("is draining: no new connections; 1 open connection(s) left"), "\(drained)")
        // The open connection goes on; new ones go elsewhere.
        try open.send("b")
        #expect(try open.receiveString(exactly: 1) == "b")
        #expect(try TestSocket.backendName(viaProxyAt: proxy.port) == "other")

        let (status, closed) = try runProxyBinary(["ctl", "-control", path, "shutdown", "sessions", "0"])
        #expect(status == 0)
        #expect(closed.contains("closed 1 connection(s)"), "\(closed)")
        #expect((try? open.receiveToEnd()) != nil)  // ends (cleanly or with a reset), does not hang
    }

    @Test func badInputGetsOneErrorLineAndNeverHurtsTheProxy() async throws {
        let fixture = try Fixture()
        // Unknown commands and wrong arguments: exit status 1 and one error line.
        for words in [["bogus"], ["show"], ["disable"], ["disable", "10.9.9.9:1"], ["shutdown", "everything"]] {
            let (status, output) = try runProxyBinary(["ctl", "-control", fixture.socketPath] + words)
            #expect(status == 1, "\(words)")
            #expect(output.hasPrefix("error: "), "\(words): \(output)")
            #expect(output.split(separator: "\n").count == 1, "\(output)")
        }

        // Garbage, a partial line, and a line far over the limit, on raw sockets.
        let garbage = try UnixClient(path: fixture.socketPath)
        try garbage.send([0, 255, 254, 10, 13, 10] + Array("show stats\n".utf8))
        garbage.shutdownWrite()
        let garbageAnswer = try garbage.receiveToEnd()
        #expect(garbageAnswer.contains("error: unknown command"))
        #expect(garbageAnswer.contains("stats listener:"))

        let partial = try UnixClient(path: fixture.socketPath)
        try partial.send(Array("show back".utf8))  // and nothing more for a while
        let long = try UnixClient(path: fixture.socketPath)
        try long.send(Array(repeating: UInt8(ascii: "x"), count: 100_000))
        #expect(try long.receiveToEnd().contains("error: line too long"))
        // A client that goes on sending (a 320 KB line, in pieces, so that some is always
        // on its way) still reads the answer, then a clean end of stream: no reset.
        let longer = try UnixClient(path: fixture.socketPath)
        let sender = Thread {
            for _ in 0..<40 {
                try? longer.send(Array(repeating: UInt8(ascii: "y"), count: 8192))
                usleep(2000)
            }
            try? longer.send([10])
            longer.shutdownWrite()
        }
        sender.start()
        var reply: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        var ending: Int32 = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(longer.fd, $0.baseAddress!, $0.count, 0) }
            if n <= 0 {
                ending = n == 0 ? 0 : errno
                break
            }
            reply += buffer[0..<n]
        }
        #expect(String(decoding: reply, as: UTF8.self) == "error: line too long (the limit is 4096 bytes)\nerror\n\n")
        #expect(ending == 0, "the answer ended with errno \(ending), not a clean end of stream")

        // Many clients at once, each with a command.
        let answers = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<50 {
                group.addTask {
                    let client = try UnixClient(path: fixture.socketPath)
                    try client.send(Array("show backends --json\n".utf8))
                    client.shutdownWrite()
                    return try client.receiveToEnd()
                }
            }
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(answers.count == 50)
        #expect(answers.allSatisfy { $0.hasPrefix("{\"ok\":true") })

        // Through all of this the proxy served, and the partial line is still waiting.
        #expect(try fixture.backendName() == "first")
        partial.shutdownWrite()
        #expect(try partial.receiveToEnd().contains("error: usage: show backends | show stats"))
    }

    @Test func theSocketIsPrivateAndRemovedOnExit() throws {
        let fixture = try Fixture()
        let attributes = try FileManager.default.attributesOfItem(atPath: fixture.socketPath)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        // Bound in a private staging directory and renamed into place: nothing else is left.
        #expect(try FileManager.default.contentsOfDirectory(atPath: fixture.directory.path) == ["control.sock"])
        fixture.proxy.signal(SIGTERM)
        #expect(fixture.proxy.waitForExit() == 0)
        #expect(!FileManager.default.fileExists(atPath: fixture.socketPath))
    }

    @Test func ctlWithoutAProxySaysSo() throws {
        let directory = try TemporaryDirectory()
        let (status, output) = try runProxyBinary(["ctl", "-control", directory.file("none.sock"), "show", "backends"])
        #expect(status == 1)
        #expect(output.contains("cannot connect to \(directory.file("none.sock"))"), "\(output)")
        let (usageStatus, usage) = try runProxyBinary(["ctl"])
        #expect(usageStatus == 2)
        #expect(usage.contains("missing command"))
    }

    @Test func aSecondProxyCannotTakeALiveControlSocket() throws {
        let fixture = try Fixture()
        let (status, output) = try runProxyBinary(["-control", fixture.socketPath, "127.0.0.1:0", "127.0.0.1:1"])
        #expect(status == 1)
        #expect(output.contains("cannot open control socket \"\(fixture.socketPath)\": another process is listening on it"), "\(output)")
    }
}
