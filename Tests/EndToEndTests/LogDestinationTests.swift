import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Journal and syslog, checked on sockets the test owns: the proxy runs in a private mount
/// namespace where the test's directory is mounted over /run/systemd (journal) or /dev (syslog).
@Suite(.enabled(if: canUseMountNamespaces, "needs root and unshare -m to put test sockets in place of /run/systemd and /dev"))
struct LogDestinationTests {
    /// Journal datagrams as field dictionaries.
    static func entries(_ listener: DatagramListener) -> [[String: String]] {
        listener.messages.map { datagram in
            var fields: [String: String] = [:]
            for line in datagram.split(separator: "\n") {
                guard let equals = line.firstIndex(of: "=") else { continue }
                fields[String(line[..<equals])] = String(line[line.index(after: equals)...])
            }
            return fields
        }
    }

    @Test func journalEntriesCarryStructuredFields() throws {
        let directory = try TemporaryDirectory()
        mkdir(directory.file("journal"), 0o755)
        let journal = try DatagramListener(path: directory.file("journal/socket"))
        defer { journal.close() }
        let dead = try refusingPort()
        let backend = try TestServer.naming("b")
        let proxy = try ProxyProcess(
            inMountNamespace(
                binding: [(directory.path, "/run/systemd")],
                ["-journal", "127.0.0.1:0", "127.0.0.1:\(dead)", "127.0.0.1:\(backend.port)"]),
            waitForListening: false, executable: URL(fileURLWithPath: "/usr/bin/unshare"))
        defer { proxy.stop() }
        _ = journal.waitFor { $0.contains("EVENT=started") }
        let started = try #require(Self.entries(journal).first { $0["EVENT"] == "started" })
        let port = try #require(started["MESSAGE"]?.split(separator: "listening on 127.0.0.1:").last?.split(separator: ";").first.flatMap { Int($0) })
        #expect(try TestSocket.connect(port: port).receiveToEnd() == Array("b".utf8))
        #expect(journal.waitFor { $0.contains("EVENT=backend_down") } != nil)
        // Logged from two threads (the event loop and the registry): either may come first.
        #expect(journal.waitFor { $0.contains("EVENT=failover") } != nil)

        let entries = Self.entries(journal)
        #expect(started["PRIORITY"] == "5")
        #expect(started["SYSLOG_IDENTIFIER"] == "tcp-fallback")
        #expect(started["EVENT"] == "started")
        let down = try #require(entries.first { $0["EVENT"] == "backend_down" })
        #expect(down["BACKEND"] == "127.0.0.1:\(dead)")
        #expect(down["PRIORITY"] == "4")
        #expect(down["MESSAGE"] == "backend 127.0.0.1:\(dead) is down: connection refused")
        let failover = try #require(entries.first { $0["EVENT"] == "failover" })
        #expect(failover["CLIENT"]?.hasPrefix("127.0.0.1:") == true)
        // With -journal, nothing goes to standard error.
        #expect(proxy.log.isEmpty, "\(proxy.log)")
    }

    @Test func standardErrorThatIsTheJournalMeansNativeJournalLogging() throws {
        let directory = try TemporaryDirectory()
        mkdir(directory.file("journal"), 0o755)
        let journal = try DatagramListener(path: directory.file("journal/socket"))
        defer { journal.close() }
        let backend = try TestServer.naming("b")
        let proxy = try ProxyProcess(
            inMountNamespace(binding: [(directory.path, "/run/systemd")], ["127.0.0.1:0", "127.0.0.1:\(backend.port)"]),
            waitForListening: false, executable: URL(fileURLWithPath: "/usr/bin/unshare"), journalStream: true)
        defer { proxy.stop() }
        #expect(journal.waitFor { $0.contains("MESSAGE=tcp-fallback") && $0.contains("listening on") } != nil)
        #expect(proxy.log.isEmpty, "\(proxy.log)")
    }

    @Test func anUnreachableJournalFallsBackToStandardErrorWithOneWarning() throws {
        let directory = try TemporaryDirectory()  // no journal socket in it
        let backend = try TestServer.naming("b")
        let proxy = try ProxyProcess(
            inMountNamespace(binding: [(directory.path, "/run/systemd")], ["-journal", "127.0.0.1:0", "127.0.0.1:\(backend.port)"]),
            executable: URL(fileURLWithPath: "/usr/bin/unshare"))
        defer { proxy.stop() }
        #expect(try TestSocket.connect(port: proxy.port).receiveToEnd() == Array("b".utf8))
        proxy.signal(SIGUSR1)
        #expect(proxy.waitForLog("stats backend"))
        let warnings = proxy.log.split(separator: "\n").filter { $0.contains("the journal cannot be reached") }
        #expect(warnings.count == 1, "\(proxy.log)")
    }

    @Test func syslogMessagesHaveTheFacilityAndPriority() throws {
        let directory = try TemporaryDirectory()
        let syslog = try DatagramListener(path: directory.file("log"))
        defer { syslog.close() }
        let dead = try refusingPort()
        let backend = try TestServer.naming("b")
        let proxy = try ProxyProcess(
            inMountNamespace(
                binding: [(directory.path, "/dev")],
                ["-syslog", "-syslog-facility=local3", "127.0.0.1:0", "127.0.0.1:\(dead)", "127.0.0.1:\(backend.port)"]),
            waitForListening: false, executable: URL(fileURLWithPath: "/usr/bin/unshare"))
        defer { proxy.stop() }
        let started = try #require(syslog.waitFor { $0.contains("listening on 127.0.0.1:") })
        // local3 (19) * 8 + notice (5)
        #expect(started.hasPrefix("<157>"), "\(started)")
        #expect(started.contains("tcp-fallback["))
        let portText = try #require(started.split(separator: "listening on 127.0.0.1:").last?.split(separator: " ").first)
        let port = try #require(Int(portText.trimmingCharacters(in: CharacterSet(charactersIn: ";"))))
        #expect(try TestSocket.connect(port: port).receiveToEnd() == Array("b".utf8))
        // local3 * 8 + warning (4)
        let down = try #require(syslog.waitFor { $0.contains("is down") })
        #expect(down.hasPrefix("<156>"), "\(down)")
        #expect(!proxy.log.contains("warning: no syslog daemon"))
    }

    @Test func syslogWithoutADaemonWarnsOnceAndKeepsRunning() throws {
        let directory = try TemporaryDirectory()  // no /dev/log in it
        let backend = try TestServer.naming("b")
        let port = try refusingPort()
        let proxy = try ProxyProcess(
            inMountNamespace(binding: [(directory.path, "/dev")], ["-syslog", "127.0.0.1:\(port)", "127.0.0.1:\(backend.port)"]),
            waitForListening: false, executable: URL(fileURLWithPath: "/usr/bin/unshare"))
        defer { proxy.stop() }
        #expect(proxy.waitForLog("warning: no syslog daemon listens on /dev/log"))
        #expect(eventuallyConnects(port: port))
        #expect(proxy.process.isRunning)
    }

    func eventuallyConnects(port: Int) -> Bool {
        for _ in 0..<200 {
            if let socket = try? TestSocket.connect(port: port), (try? socket.receiveToEnd()) == Array("b".utf8) { return true }
            usleep(20_000)
        }
        return false
    }
}
