import Testing
@testable import TCPFallback

/// Which backends new clients get, by role, on hand-made states: no network.
@Suite struct BackendSelectionTests {
    static let backends = (0..<3).map { Backend(id: $0, endpoint: Endpoint(host: "10.0.0.\(10 + $0)", port: 3306)) }
    static let writable = MySQLServerState(readOnly: false, innodbReadOnly: false)
    static func replica(behind: Int?, running: Bool = true) -> MySQLServerState {
        MySQLServerState(readOnly: true, innodbReadOnly: false, replica: .init(ioRunning: running, sqlRunning: running, secondsBehind: behind))
    }

    static func snapshot(_ servers: [MySQLServerState?], up: [Bool] = [true, true, true], _ configure: (inout RoleSettings) -> Void) -> RegistrySnapshot {
        var settings = RoleSettings()
        configure(&settings)
        let statuses = zip(backends, zip(servers, up)).map { backend, pair in
            BackendStatus(backend: backend, isUp: pair.1, administrativeState: .enabled, isHeld: false, server: pair.0)
        }
        return RegistrySnapshot(backends: statuses, selection: BackendSelection(settings: settings))
    }

    @Test func aWriterIsTheFirstWritableWhereverItIsAndNeverAReadOnlyOrDownOne() {
        let snapshot = Self.snapshot([Self.replica(behind: 0), nil, Self.writable]) { $0.role = .writer }
        #expect(snapshot.connectOrder.map(\.id) == [2])
        #expect(snapshot.current?.id == 2)
        let down = Self.snapshot([Self.replica(behind: 0), nil, Self.writable], up: [true, true, false]) { $0.role = .writer }
        #expect(down.connectOrder.isEmpty)
        #expect(down.refusalReason == "no writable backend")
        #expect(ServiceStatus.describe(down, openConnections: 0) == "refusing new clients: no writable backend (2 of 3 up), 0 connections")
    }

    @Test func twoWritableAreASplitBrainUnlessFirstIsAsked() {
        let refused = Self.snapshot([Self.writable, Self.replica(behind: 0), Self.writable]) { $0.role = .writer }
        #expect(refused.connectOrder.isEmpty)
        #expect(refused.splitBrain?.map(\.id) == [0, 2])
        #expect(
            ServiceStatus.describe(refused, openConnections: 3)
                == "refusing new clients: split brain: 10.0.0.10:3306 and 10.0.0.12:3306 are all writable (3 of 3 up), 3 connections")
        let first = Self.snapshot([Self.writable, Self.replica(behind: 0), Self.writable]) { $0.role = .writer; $0.splitBrain = .first }
        #expect(first.connectOrder.map(\.id) == [0])
        #expect(first.splitBrain == nil)
    }

    @Test func readersGetFreshReplicasOrTheWriterOrNothing() {
        let servers = [Self.writable, Self.replica(behind: 3), Self.replica(behind: 60)]
        #expect(Self.snapshot(servers) { $0.role = .reader }.connectOrder.map(\.id) == [1])
        #expect(Self.snapshot(servers) { $0.role = .reader; $0.maxLag = nil }.connectOrder.map(\.id) == [1, 2])
        let stopped = [Self.writable, Self.replica(behind: nil, running: false), Self.replica(behind: 60)]
        #expect(Self.snapshot(stopped) { $0.role = .reader }.connectOrder.map(\.id) == [0])
        let none = Self.snapshot(stopped) { $0.role = .reader; $0.readerFallback = .none }
        #expect(none.connectOrder.isEmpty)
        #expect(none.refusalReason != nil)
    }

    @Test func balanceSpreadsOverTheEquallyGoodOnly() {
        let servers = [Self.writable, Self.replica(behind: 0), Self.replica(behind: 1)]
        let readers = Self.snapshot(servers) { $0.role = .reader }
        let turns = (0..<4).map { readers.connectOrder(balance: .roundrobin, turn: $0).first!.id }
        #expect(turns == [1, 2, 1, 2])
        #expect(readers.connectOrder(balance: .first, turn: 1).map(\.id) == [1, 2])
        // Role any: the backends that are up take turns; one that is down stays last.
        let any = Self.snapshot([nil, nil, nil], up: [true, false, true]) { _ in }
        #expect(any.connectOrder(balance: .roundrobin, turn: 1).map(\.id) == [2, 0, 1])
        // Least connections: the one with the fewest clients (connecting or relaying), the
        // first in order on a tie.
        Self.backends[1].counters.slots[0].assignedConnections.store(5, ordering: .relaxed)
        defer { Self.backends[1].counters.slots[0].assignedConnections.store(0, ordering: .relaxed) }
        #expect(readers.connectOrder(balance: .leastconn, turn: 0).map(\.id) == [2, 1])
        Self.backends[2].counters.slots[0].assignedConnections.store(5, ordering: .relaxed)
        defer { Self.backends[2].counters.slots[0].assignedConnections.store(0, ordering: .relaxed) }
        #expect(readers.connectOrder(balance: .leastconn, turn: 0).map(\.id) == [1, 2])
    }
}
