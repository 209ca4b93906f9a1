import Etcd
import Foundation
import Testing
import TestSupport
import TCPFallback

extension EtcdProxyTests {
    /// Backends from a real 3-member etcd cluster (`-etcd`), in each layout: the proxy's list
    /// follows adds, removals, reorders and changed values, survives an emptied prefix, an etcd
    /// restart and a compaction, and starts from the state file while etcd is down.
    @Suite(.serialized)
    struct EtcdDiscoveryTests {
        /// Writes a list of backends in one layout.
        struct Writer {
            let client: EtcdClient
            let prefix: String
            let layout: EtcdLayout

            func write(_ ports: [Int]) async throws {
                switch layout {
                case .native:
                    let list = ports.map { "\"127.0.0.1:\($0)\"" }.joined(separator: ",")
                    try await client.put(prefix + "backends", value: Array("[\(list)]".utf8))
                case .netfw:
                    // One transaction, as an operator's tool would write it: every position, and
                    // the positions past the end deleted.
                    let read = try await client.range(prefix: prefix)
                    let puts = ports.enumerated().map { position, port in
                        EtcdOperation.put(key: prefix + "\(position + 1)/location", value: Array("{\"host\":\"127.0.0.1\",\"port\":\(port)}".utf8))
                    }
                    let kept = Set((1...max(ports.count, 1)).map { prefix + "\($0)/location" })
                    let deletes = read.keyValues.map(\.key).filter { !kept.contains($0) }.map { EtcdOperation.delete(key: $0) }
                    _ = try await client.txn(compare: [], success: puts + deletes)
                case .groxy:
                    let read = try await client.range(prefix: prefix)
                    let wanted = Set(ports.map { prefix + "127.0.0.1:\($0)" })
                    let deletes = read.keyValues.map(\.key).filter { !wanted.contains($0) }.map { EtcdOperation.delete(key: $0) }
                    _ = try await client.txn(compare: [], success: deletes + wanted.map { EtcdOperation.put(key: $0, value: []) })
                }
            }
        }

        static func names(viaProxyAt port: Int, count: Int = 1) -> [String] {
            (0..<count).compactMap { _ in try? TestSocket.backendName(viaProxyAt: port) }
        }

        @Test(arguments: EtcdLayout.allCases)
        func theListFollowsEtcd(layout: EtcdLayout) async throws {
            let cluster = try EtcdCluster()
            defer { cluster.stop() }
            let client = EtcdClient(endpoints: try cluster.endpoints.map { try EtcdEndpoint(parsing: $0) }, requestTimeout: .seconds(3))
            let servers = try ["a", "b", "c"].map { try TestServer.naming($0) }
            let (a, b, c) = (servers[0].port, servers[1].port, servers[2].port)
            let prefix = "/services/\(layout.rawValue)/"
            let writer = Writer(client: client, prefix: prefix, layout: layout)
            // groxy's order is the keys' order: the ports' text.
            let ordered = layout == .groxy ? [a, b].sorted { "\($0)" < "\($1)" } : [a, b]
            try await writer.write(ordered)
            let directory = try TemporaryDirectory()
            let control = directory.file("control.sock")
            let arguments = [
                "-etcd", cluster.clientURLs.joined(separator: ","), "-etcd-layout", layout.rawValue, "-etcd-prefix", prefix,
                "-check-interval", "100ms", "-control", control, "-state-file", directory.file("state"), "127.0.0.1:0",
            ]
            var proxy = try ProxyProcess(arguments)
            let first = layout == .groxy ? (ordered[0] == a ? "a" : "b") : "a"
            #expect(Self.names(viaProxyAt: proxy.port) == [first], "\(proxy.log)")
            #expect(proxy.log.contains("(from etcd \(prefix), revision"), "\(proxy.log)")

            // Added at the head (native, netfw) or anywhere (groxy): checked, then used.
            try await writer.write(layout == .groxy ? [a, b, c] : [c, a, b])
            #expect(await proxy.logShows("backend 127.0.0.1:\(c) added"), "\(proxy.log)")
            #expect(await proxy.logShows("backend 127.0.0.1:\(c) is up and in rotation"), "\(proxy.log)")
            if layout != .groxy {
                #expect(await eventually(timeout: .seconds(5)) { Self.names(viaProxyAt: proxy.port) == ["c"] }, "\(proxy.log)")
                // Reordered: the new order applies to new clients.
                try await writer.write([b, c, a])
                #expect(await eventually(timeout: .seconds(5)) { Self.names(viaProxyAt: proxy.port) == ["b"] }, "\(proxy.log)")
            }
            // Removed: no new client goes to it.
            let head = layout == .groxy ? first : "b"
            let headPort = head == "a" ? a : b
            let without = layout == .groxy ? [a, b, c].filter { $0 != headPort } : [c, a]
            try await writer.write(without)
            #expect(await proxy.logShows("removed"), "\(proxy.log)")
            #expect(await eventually(timeout: .seconds(5)) { !Self.names(viaProxyAt: proxy.port).contains(head) }, "\(proxy.log)")
            let (_, shown) = try runProxyBinary(["ctl", "-control", control, "show", "backends"])
            #expect(shown.contains("backends from etcd \(prefix) (layout \(layout.rawValue)), revision"), "\(shown)")
            #expect(!shown.contains("127.0.0.1:\(headPort) "), "\(shown)")

            // The whole prefix deleted: the list stays and clients are served.
            let before = Self.names(viaProxyAt: proxy.port)
            try await client.deletePrefix(prefix)
            #expect(await proxy.logShows("lists no backend under \(prefix)"), "\(proxy.log)")
            #expect(Self.names(viaProxyAt: proxy.port) == before)

            // etcd stopped and started again: served throughout; then a new list is followed.
            cluster.stopAll()
            #expect(await proxy.logShows("etcd cannot be reached", timeout: .seconds(15)), "\(proxy.log)")
            #expect(Self.names(viaProxyAt: proxy.port) == before)
            try cluster.startAll()
            try await writer.write([a])
            #expect(await eventually(timeout: .seconds(15)) { Self.names(viaProxyAt: proxy.port) == ["a"] }, "\(proxy.log)")
            #expect(await proxy.logShows("etcd answers again"), "\(proxy.log)")

            // Compacted past what the proxy has seen: it still follows.
            let revision = try await client.put(prefix + "unrelated/key", value: [])
            try await client.compact(revision: revision)
            try await writer.write([b])
            #expect(await eventually(timeout: .seconds(10)) { Self.names(viaProxyAt: proxy.port) == ["b"] }, "\(proxy.log)")

            // Restarted while etcd is down: it starts with the last list etcd gave.
            proxy.stop()
            cluster.stopAll()
            proxy = try ProxyProcess(arguments)
            #expect(proxy.log.contains("etcd's last list, from the state file"), "\(proxy.log)")
            #expect(Self.names(viaProxyAt: proxy.port) == ["b"], "\(proxy.log)")
            proxy.stop()
        }

        @Test func badKeysAreSkippedAndNamed() async throws {
            let cluster = try EtcdCluster(members: 1)
            defer { cluster.stop() }
            let client = EtcdClient(endpoints: try cluster.endpoints.map { try EtcdEndpoint(parsing: $0) }, requestTimeout: .seconds(3))
            let server = try TestServer.naming("good")
            try await client.put("/svc/1/location", value: Array("{\"host\":\"127.0.0.1\",\"port\":\(server.port)}".utf8))
            try await client.put("/svc/2/location", value: Array("{\"host\":\"127.0.0.1\"}".utf8))
            try await client.put("/svc/x/location", value: Array("{}".utf8))
            let proxy = try ProxyProcess(["-etcd", cluster.clientURLs[0], "-etcd-layout", "netfw", "-etcd-prefix", "/svc", "127.0.0.1:0"])
            #expect(try TestSocket.backendName(viaProxyAt: proxy.port) == "good")
            #expect(await proxy.logShows("etcd key skipped: /svc/2/location: \"port\" must be a number from 1 to 65535"), "\(proxy.log)")
            #expect(await proxy.logShows("etcd key skipped: /svc/x/location: the name after the prefix must be a number"), "\(proxy.log)")
        }

        @Test func etcdDownAtStartWithoutAnyListServesNoOneUntilItAnswers() async throws {
            let cluster = try EtcdCluster(members: 1)
            defer { cluster.stop() }
            let server = try TestServer.naming("late")
            cluster.stopAll()
            let proxy = try ProxyProcess(["-etcd", cluster.clientURLs[0], "127.0.0.1:0"])
            #expect(proxy.log.contains("no backend to start with"), "\(proxy.log)")
            #expect((try? TestSocket.backendName(viaProxyAt: proxy.port)) ?? "" == "")
            try cluster.startAll()
            let client = EtcdClient(endpoints: try cluster.endpoints.map { try EtcdEndpoint(parsing: $0) }, requestTimeout: .seconds(3))
            try await client.put("/tcp-fallback/backends", value: Array("[\"127.0.0.1:\(server.port)\"]".utf8))
            #expect(await eventually(timeout: .seconds(15)) { (try? TestSocket.backendName(viaProxyAt: proxy.port)) == "late" }, "\(proxy.log)")
        }

        @Test func badFlagsAreRefused() throws {
            for (arguments, message) in [
                (["-etcd", "https://127.0.0.1:2379", "127.0.0.1:0"], "TLS"),
                (["-etcd", ",", "127.0.0.1:0"], "invalid -etcd"),
                (["-etcd-prefix", "/x", "127.0.0.1:0", "127.0.0.1:1"], "need -etcd"),
                (["-etcd", "http://127.0.0.1:2379", "-etcd-layout", "zk", "127.0.0.1:0"], "etcd-layout"),
                (["-etcd", "http://127.0.0.1:2379", "-etcd-prefix", "/", "127.0.0.1:0"], "must name a key prefix"),
                (["-etcd", "http://127.0.0.1:2379", "-etcd-group", "g", "127.0.0.1:0"], "needs -check-interval"),
                (["-etcd", "http://127.0.0.1:2379", "-etcd-group", "a/b", "-check-interval", "1s", "127.0.0.1:0"], "-etcd-group must be a name"),
                (["-etcd", "http://127.0.0.1:2379", "-etcd-quorum", "most", "127.0.0.1:0"], "-etcd-quorum must be"),
            ] {
                let (status, output) = try runProxyBinary(arguments)
                #expect(status == 2, "\(arguments): \(output)")
                #expect(output.contains(message), "\(arguments): \(output)")
            }
        }
    }
}
