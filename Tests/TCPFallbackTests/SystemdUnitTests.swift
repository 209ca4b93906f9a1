import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing
import TCPFallback
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

@Suite struct WatchdogTests {
    /// Pings stop while any event loop is stuck, and resume when it is free again.
    @Test func pingsStopWhileALoopHangs() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let pings = Locked<[ContinuousClock.Instant]>([])
        let watchdog = Watchdog(group: group, interval: .milliseconds(100)) {
            pings.withLock { $0.append(.now) }
        }
        watchdog.start()
        try await Task.sleep(for: .milliseconds(300))
        let healthy = pings.withLock { $0.count }
        #expect(healthy >= 4, "\(healthy) pings in 300ms at a 50ms period")

        // Hang the second loop for 600ms, noting when the hang really began and ended.
        let loops = Array(group.makeIterator())
        let hang = Locked<(start: ContinuousClock.Instant?, end: ContinuousClock.Instant?)>((nil, nil))
        loops[1].execute {
            hang.withLock { $0.start = .now }
            usleep(600_000)
            hang.withLock { $0.end = .now }
        }
        #expect(await eventually(timeout: .seconds(5)) { hang.withLock { $0.end != nil } })
        try await Task.sleep(for: .milliseconds(300))
        let (start, end) = hang.withLock { ($0.start!, $0.end!) }
        let all = pings.withLock { $0 }
        // One ping may already be on its way when the hang begins (its check-ins were in).
        let duringHang = all.filter { $0 > start + .milliseconds(60) && $0 < end }
        #expect(duringHang.isEmpty, "\(duringHang.count) pings while a loop was stuck")
        let afterHang = all.filter { $0 > end }
        #expect(afterHang.count >= 2, "pings did not resume")
        watchdog.stop()
        try await group.shutdownGracefully()
    }
}

@Suite struct SocketActivationTests {
    /// A listening socket on 127.0.0.1 or [::], as systemd would pass it.
    func listener(ipv6Wildcard: Bool = false) -> (descriptor: Int32, port: Int) {
        let family = ipv6Wildcard ? AF_INET6 : AF_INET
        let fd = socket(family, Int32(SOCK_STREAM.rawValue), 0)
        if ipv6Wildcard {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_addr = in6addr_any
            _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
        listen(fd, 4)
        var storage = sockaddr_in6()
        var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        _ = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return (fd, Int(UInt16(bigEndian: storage.sin6_port)))
    }

    /// Whether something still listens on 127.0.0.1:`port`. (Checking the descriptor number
    /// would race with other tests, which may be handed the same number at once.)
    func listens(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    func inherited(_ fd: Int32, _ name: String) -> SocketActivation.InheritedSocket {
        SocketActivation.InheritedSocket(descriptor: fd, name: name, address: SocketActivation.boundStreamAddress(fd))
    }

    @Test func selectsByNameByPortOrAll() throws {
        let a = listener()
        let b = listener(ipv6Wildcard: true)
        let sockets = [inherited(a.descriptor, "mysql"), inherited(b.descriptor, "admin")]
        #expect(sockets[1].address?.isWildcard == true)

        let byName = try SocketActivation.select(sockets, .named("admin"))
        #expect(byName.map(\.descriptor) == [b.descriptor])
        #expect(!listens(a.port), "an unselected socket stays open")
        close(b.descriptor)
    }

    @Test func anAddressSelectsThePassedSocketsOnItsPort() throws {
        let a = listener()
        let b = listener(ipv6Wildcard: true)
        let sockets = [inherited(a.descriptor, "one"), inherited(b.descriptor, "two")]
        let chosen = try SocketActivation.select(sockets, .matching(Endpoint(host: "0.0.0.0", port: b.port)))
        #expect(chosen.map(\.descriptor) == [b.descriptor])
        #expect(!listens(a.port))
        for socket in chosen { close(socket.descriptor) }
    }

    @Test func allTakesEveryStreamListener() throws {
        let a = listener()
        let b = listener()
        let chosen = try SocketActivation.select([inherited(a.descriptor, "x"), inherited(b.descriptor, "y")], .all)
        #expect(chosen.count == 2)
        for socket in chosen { close(socket.descriptor) }
    }

    @Test func selectingNothingIsAnErrorThatNamesWhatWasPassed() {
        let a = listener()
        #expect {
            try SocketActivation.select([inherited(a.descriptor, "mysql")], .matching(Endpoint(host: "127.0.0.1", port: 1)))
        } throws: { error in
            "\(error)".contains("no inherited socket matches the listen address 127.0.0.1:1") && "\(error)".contains("127.0.0.1:\(a.port)")
        }
        #expect(!listens(a.port))
    }

    @Test func placeholders() {
        #expect(SocketActivation.Selection(placeholder: "systemd") == .all)
        #expect(SocketActivation.Selection(placeholder: "systemd:mysql") == .named("mysql"))
        #expect(SocketActivation.Selection(placeholder: "systemd:") == nil)
        #expect(SocketActivation.Selection(placeholder: "127.0.0.1:3306") == nil)
    }
}

@Suite struct ServiceStatusTests {
    @Test func describesTheBackendInUse() async {
        let registry = BackendRegistry(
            backends: [Endpoint(host: "10.0.0.10", port: 3306), Endpoint(host: "10.0.0.11", port: 3306)],
            probeDelay: nil, healthCheck: TCPConnectCheck(group: MultiThreadedEventLoopGroup.singleton, timeout: .seconds(1)),
            logger: .init(label: "test"))
        #expect(ServiceStatus.describe(registry.snapshot, openConnections: 14) == "serving via 10.0.0.10:3306 (2 of 2 backends up), 14 connections")
        await registry.markDown(registry.backends[0], reason: "refused")
        #expect(ServiceStatus.describe(registry.snapshot, openConnections: 1) == "serving via 10.0.0.11:3306 (1 of 2 backends up), 1 connection")
        await registry.markDown(registry.backends[1], reason: "refused")
        #expect(ServiceStatus.describe(registry.snapshot, openConnections: 0) == "no backend up (0 of 2), 0 connections")
    }
}
