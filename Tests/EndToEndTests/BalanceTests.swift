import Testing
import TestSupport
import TCPFallback

/// -balance through real sockets: clients spread over the backends that are up.
@Suite struct BalanceTests {
    @Test func roundRobinTakesTurnsAndSkipsABackendThatIsDown() async throws {
        let a = try TestServer.naming("a")
        let b = try TestServer.naming("b")
        let dead = try refusingPort()
        try await withProxy(backends: [a.port, dead, b.port], configure: { $0.balance = .roundrobin; $0.eventLoopThreads = 1 }) { (_, port) async throws in
            var names: [String] = []
            for _ in 0..<6 { names.append(try TestSocket.backendName(viaProxyAt: port)) }
            // The dead one is found down by the first client that tries it, then skipped.
            #expect(names.filter { $0 == "a" }.count >= 2, "\(names)")
            #expect(names.filter { $0 == "b" }.count >= 2, "\(names)")
            #expect(Array(names.suffix(4)) == ["a", "b", "a", "b"] || Array(names.suffix(4)) == ["b", "a", "b", "a"], "\(names)")
        }
    }

    @Test func leastConnectionsGoesToTheLessBusyBackend() async throws {
        let a = try TestServer.echo()
        let b = try TestServer.echo()
        try await withProxy(backends: [a.port, b.port], configure: { $0.balance = .leastconn }) { (proxy, port) async throws in
            // Three connections held: each goes where fewer are open.
            var held: [TestSocket] = []
            defer { for socket in held { socket.close() } }
            for _ in 0..<3 {
                let socket = try TestSocket.connect(port: port)
                try socket.send("x")
                _ = try socket.receive(exactly: 1)
                held.append(socket)
            }
            let open = proxy.registry.backends.map { $0.counters.values.activeConnections }
            #expect(open.sorted() == [1, 2], "\(open)")
        }
    }
}
