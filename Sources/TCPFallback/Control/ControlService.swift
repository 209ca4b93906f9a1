import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Carries out control commands against a running proxy and words the answers.
public struct ControlService: Sendable {
    /// An answer: text (or one line of JSON), and whether the command succeeded.
    public struct Reply: Sendable, Equatable {
        public let ok: Bool
        public let text: String

        public init(ok: Bool, text: String) {
            self.ok = ok
            self.text = text
        }
    }

    /// Starts and stops CPU profiles, when the binary has a profiler.
    public protocol Profiling: Sendable {
        func start(writingTo path: String) throws -> String
        func stop() throws -> String
    }

    let listeners: ListenerSet
    let stats: StatsReporter
    let profiling: (any Profiling)?
    let logger: Logger
    /// Re-reads the configuration file and applies it (`reload`); nil without `-config`.
    let reload: (@Sendable () async -> Reply)?
    /// Starts the binary anew to take this process's sockets over (`upgrade`).
    let upgrade: (@Sendable () async -> Reply)?
    /// Told which process asked this one to retire (an upgrade's new process).
    let retiring: (@Sendable (Int32?) -> Void)?

    public init(
        listeners: ListenerSet, stats: StatsReporter, logger: Logger, profiling: (any Profiling)? = nil,
        reload: (@Sendable () async -> Reply)? = nil, upgrade: (@Sendable () async -> Reply)? = nil,
        retiring: (@Sendable (Int32?) -> Void)? = nil
    ) {
        self.upgrade = upgrade
        self.retiring = retiring
        self.listeners = listeners
        self.stats = stats
        self.logger = logger
        self.profiling = profiling
        self.reload = reload
    }

    /// Parses and runs one line.
    public func handle(line: String) async -> Reply {
        do {
            return await run(try ControlCommand(parsing: line))
        } catch {
            let json = line.contains("--json")
            return failure(error.description, json: json)
        }
    }

    /// A backend a command names, on the listener that has it.
    struct Target {
        let entry: ListenerSet.Entry
        let backend: Backend
    }

    /// The backends `name` designates: `ADDRESS` on every listener that has it, `LISTENER/ADDRESS`
    /// or `LISTENER/INDEX` on one; a bare index with a single listener.
    func targets(_ name: String) -> Result<[Target], ControlFailure> {
        let all = listeners.all
        var scope = all
        var backendName = name
        if let slash = name.firstIndex(of: "/") {
            let listenerName = String(name[..<slash])
            guard let entry = all.first(where: { $0.name == listenerName }) else {
                return .failure(ControlFailure("no listener \"\(listenerName)\"; listeners: \(all.map(\.name).joined(separator: ", "))"))
            }
            scope = [entry]
            backendName = String(name[name.index(after: slash)...])
        }
        var found: [Target] = []
        for entry in scope {
            let backends = entry.proxy.registry.backends
            if let backend = backends.first(where: { $0.endpoint.description == backendName }) {
                found.append(Target(entry: entry, backend: backend))
            } else if scope.count == 1, let index = Int(backendName), backends.indices.contains(index) {
                found.append(Target(entry: entry, backend: backends[index]))
            }
        }
        guard found.isEmpty else { return .success(found) }
        let known = scope.map { entry in
            let list = entry.proxy.registry.backends.map(\.description).joined(separator: ", ")
            return listeners.isNamed ? "\(entry.name): \(list)" : list
        }.joined(separator: "; ")
        return .failure(ControlFailure("no backend \"\(name)\"; backends: \(known)"))
    }

    /// Why a command could not run.
    struct ControlFailure: Error {
        let message: String
        init(_ message: String) { self.message = message }
    }

    public func run(_ command: ControlCommand) async -> Reply {
        switch command.action {
        case .help:
            return success(ControlCommand.usage.joined(separator: "\n"), json: command.json ? .array(ControlCommand.usage.map(JSON.string)) : nil)
        case .showBackends:
            return await showBackends(json: command.json)
        case .showStats:
            let lines = await stats.lines()
            return success(lines.joined(separator: "\n"), json: command.json ? .object([("stats", .array(lines.map(JSON.string)))]) : nil)
        case .disable(let name), .enable(let name), .drain(let name), .shutdownSessions(let name), .failback(let name):
            let targets: [Target]
            switch self.targets(name) {
            case .success(let found): targets = found
            case .failure(let problem): return failure(problem.message, json: command.json)
            }
            var texts: [String] = []
            var objects: [JSON] = []
            for target in targets {
                let outcome = await apply(command.action, to: target)
                guard outcome.ok else { return failure(outcome.text, json: command.json) }
                let prefix = listeners.isNamed ? "\(target.entry.name): " : ""
                texts.append(prefix + outcome.text)
                objects.append(.object((listeners.isNamed ? [("listener", .string(target.entry.name))] : []) + outcome.fields))
            }
            // One backend on one listener answers as it always did; several answer as a list.
            let json: JSON? = command.json ? (objects.count == 1 ? objects[0] : .object([("results", .array(objects))])) : nil
            return success(texts.joined(separator: "\n"), json: json)
        case .handOver(let path):
            let listening = listeners.all.flatMap { entry in entry.proxy.listeningDescriptors.map { (entry.name, $0) } }
            do {
                try ListenerHandover.send(listening.map(\.1), to: path)
            } catch {
                return failure("cannot hand the listening sockets over: \(error)", json: command.json)
            }
            logger.notice(
                "handed \(listening.count) listening socket(s) over to a new process (an upgrade); both accept until it asks this one to retire",
                metadata: ["event": "hand_over"])
            // The second line names each socket's listener, in the order they were passed.
            return success(
                "handed over \(listening.count) listening socket(s)\n\(ListenerHandover.listenersLinePrefix)\(listening.map(\.0).joined(separator: " "))",
                json: command.json ? .object([("sockets", .int(listening.count)), ("listeners", .array(listening.map { JSON.string($0.0) }))]) : nil)
        case .retire(let pid):
            let open = listeners.openClientConnections
            logger.notice(
                "retiring at the request of the process that took the listening sockets over\(pid.map { " (PID \($0), the service's main process from now on)" } ?? "")",
                metadata: ["event": "retire"])
            // The new process is the service from now on: this one, still the main process,
            // says so (systemd takes it from the main process), then says nothing more
            // (STOPPING=1 above all) that systemd could take as the service's word.
            if let pid { SystemdNotifier().mainProcess(pid) }
            SystemdNotifier.silence()
            retiring?(pid)
            // After the answer is on its way: then as on SIGTERM (stop accepting, close the
            // control socket and metrics, let connections finish within -shutdown-grace).
            Task {
                try? await Task.sleep(for: .milliseconds(100))
                kill(getpid(), SIGTERM)
            }
            return success("retiring: no new connections here; \(open) open connection(s) finish within the shutdown grace", json: command.json ? .object([("open_connections", .int(open))]) : nil)
        case .reload:
            guard let reload else {
                return failure("nothing to reload: this process was started without -config (its command line is its whole configuration)", json: command.json)
            }
            let outcome = await reload()
            return outcome.ok ? success(outcome.text, json: command.json ? .object([("result", .string(outcome.text))]) : nil) : failure(outcome.text, json: command.json)
        case .upgrade:
            guard let upgrade else { return failure("this process cannot start its binary anew", json: command.json) }
            let outcome = await upgrade()
            return outcome.ok ? success(outcome.text, json: command.json ? .object([("result", .string(outcome.text))]) : nil) : failure(outcome.text, json: command.json)
        case .profileStart(let path):
            guard let profiling else { return failure("this build has no CPU profiler", json: command.json) }
            do { return success(try profiling.start(writingTo: path), json: nil) } catch { return failure("\(error)", json: command.json) }
        case .profileStop:
            guard let profiling else { return failure("this build has no CPU profiler", json: command.json) }
            do { return success(try profiling.stop(), json: nil) } catch { return failure("\(error)", json: command.json) }
        }
    }

    /// What one backend command did on one listener: its words and its JSON fields.
    struct Outcome {
        let ok: Bool
        let text: String
        var fields: [(String, JSON)] = []
    }

    private func apply(_ action: ControlCommand.Action, to target: Target) async -> Outcome {
        let proxy = target.entry.proxy
        let registry = proxy.registry
        let backend = target.backend
        switch action {
        case .disable, .enable, .drain:
            let state: AdministrativeState =
                switch action {
                case .disable: .disabled
                case .drain: .draining
                default: .enabled
                }
            if let member = proxy.groupMember {
                // For the whole group, through etcd: every member applies it from the decision.
                do {
                    let changed = try await member.setAdministrativeState(backend.endpoint, state, by: "an operator on \(member.settings.member)")
                    let text = "\(backend) is \(state.rawValue) for group \(member.settings.name)" + (changed ? "" : " (it was already)")
                    return Outcome(ok: true, text: text, fields: [("backend", .string("\(backend)")), ("state", .string(state.rawValue)), ("group", .string(member.settings.name))])
                } catch {
                    return Outcome(ok: false, text: "cannot set \(backend) \(state.rawValue) for group \(member.settings.name): \(error)")
                }
            }
            await registry.setAdministrativeState(backend, state)
            let open = backend.connections.count
            let text =
                switch state {
                case .enabled: "\(backend) is enabled: back in rotation"
                case .disabled: "\(backend) is disabled: no new connections; \(open) open connection(s) go on"
                case .draining: "\(backend) is draining: no new connections; \(open) open connection(s) left"
                }
            return Outcome(ok: true, text: text, fields: [("backend", .string("\(backend)")), ("state", .string(state.rawValue)), ("open_connections", .int(open))])
        case .shutdownSessions:
            let closed = backend.connections.closeAll()
            return Outcome(ok: true, text: "closed \(closed) connection(s) on \(backend)", fields: [("backend", .string("\(backend)")), ("closed", .int(closed))])
        case .failback:
            guard let status = registry.snapshot.status(of: backend) else {
                return Outcome(ok: false, text: "no backend \"\(backend)\" any more")
            }
            if let member = proxy.groupMember {
                // The group holds it, for every member: release it in etcd.
                do {
                    let released = try await member.release(backend.endpoint, by: "an operator on \(member.settings.member)")
                    let text = released ? "\(backend) is back in rotation for group \(member.settings.name)" : "\(backend) is not held by group \(member.settings.name): nothing to allow back"
                    return Outcome(ok: true, text: text, fields: [("backend", .string("\(backend)")), ("was_held", .bool(released))])
                } catch {
                    return Outcome(ok: false, text: "cannot reach etcd to allow \(backend) back for group \(member.settings.name): \(error)")
                }
            }
            var held = await registry.releaseHold(backend)
            if status.administrativeState != .enabled {
                await registry.setAdministrativeState(backend, .enabled)
                held = true
            }
            let text = held
                ? "\(backend) is back in rotation" + (status.isUp ? "" : " (it is down: new clients go to it once it answers)")
                : "\(backend) is not held: nothing to allow back"
            return Outcome(ok: true, text: text, fields: [("backend", .string("\(backend)")), ("was_held", .bool(held))])
        default:
            return Outcome(ok: false, text: "not a backend command")
        }
    }

    private func showBackends(json: Bool) async -> Reply {
        let all = listeners.all
        if !listeners.isNamed, let only = all.first, all.count == 1 {
            // One listener from a command line: the answer it always had.
            if json { return success("", json: .object(await Self.backendsJSON(only.proxy))) }
            return success(await Self.backendsText(only.proxy), json: nil)
        }
        if json {
            var entries: [JSON] = []
            for entry in all {
                let address = entry.proxy.localAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "\(entry.proxy.configuration.listen)"
                entries.append(.object([("name", .string(entry.name)), ("listen", .string(address))] + (await Self.backendsJSON(entry.proxy))))
            }
            return success("", json: .object([("listeners", .array(entries))]))
        }
        var sections: [String] = []
        for entry in all {
            let address = entry.proxy.localAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "\(entry.proxy.configuration.listen)"
            sections.append("listener \(entry.name) on \(address) (balance \(entry.proxy.configuration.balance.rawValue)):\n" + (await Self.backendsText(entry.proxy)))
        }
        return success(sections.isEmpty ? "no listener" : sections.joined(separator: "\n"), json: nil)
    }

    /// One listener's backends, its etcd source and its group, as JSON fields.
    private static func backendsJSON(_ proxy: TCPFallbackProxy) async -> [(String, JSON)] {
        let reports = await proxy.registry.reports()
        let current = proxy.registry.snapshot.current
        let entries = reports.map { report -> JSON in
            let c = report.counters
            return .object([
                ("index", .int(report.position)),
                ("address", .string("\(report.backend)")),
                ("state", .string(report.health)),
                ("admin", .string(report.administrativeState.rawValue)),
                ("held", .bool(report.isHeld)),
                ("new", .bool(report.isNew)),
                ("in_use", .bool(report.backend === current)),
                ("active_connections", .int(c.activeConnections)),
                ("connections_total", .int(c.connectionsTotal)),
                ("bytes_from_client", .int(c.bytesFromClient)),
                ("bytes_to_client", .int(c.bytesToClient)),
                ("connect_errors", .int(c.connectErrors)),
                ("downtime_seconds", .double(report.downtime.seconds)),
                ("since_last_change_seconds", report.sinceLastChange.map { .double($0.seconds) } ?? .null),
                ("last_error", report.lastError.map(JSON.string) ?? .null),
                ("server", report.server.map(Self.serverJSON) ?? .null),
            ])
        }
        let refusal = proxy.registry.snapshot.refusalReason.map(JSON.string) ?? .null
        var fields: [(String, JSON)] = [("backends", .array(entries)), ("refusing", refusal)]
        if let source = proxy.backendSource {
            let status = source.status
            fields.append(
                (
                    "etcd",
                    .object([
                        ("prefix", .string(source.settings.prefix)), ("layout", .string(source.settings.layout.rawValue)),
                        ("reachable", .bool(status.reachable)), ("revision", .int(Int(status.revision))),
                        ("problem", status.problem.map(JSON.string) ?? .null), ("changes", .int(status.changes)),
                    ])
                ))
        }
        if let member = proxy.groupMember {
            let group = member.status
            fields.append(
                (
                    "group",
                    .object([
                        ("name", .string(member.settings.name)), ("member", .string(member.settings.member)),
                        ("leader", group.leader.map(JSON.string) ?? .null), ("is_leader", .bool(group.isLeader)),
                        ("decision", group.decision?.backend.map(JSON.string) ?? .null), ("epoch", .int(Int(group.decision?.epoch ?? 0))),
                        ("held", .array((group.decision?.held ?? []).map(JSON.string))),
                        ("disabled", .array((group.decision?.disabled ?? []).map(JSON.string))),
                        ("draining", .array((group.decision?.draining ?? []).map(JSON.string))), ("live_members", .int(group.liveMembers)),
                        ("lost", group.lost.map(JSON.string) ?? .null),
                    ])
                ))
        }
        return fields
    }

    /// One listener's backends as a table, then its etcd source and its group.
    private static func backendsText(_ proxy: TCPFallbackProxy) async -> String {
        let reports = await proxy.registry.reports()
        let current = proxy.registry.snapshot.current
        // New columns go last: scripts may read the earlier ones by position.
        var rows = [["#", "backend", "state", "in use", "active", "total", "from client", "to client", "errors", "last change", "server"]]
        for report in reports {
            let c = report.counters
            let state = ([report.health] + report.conditions).joined(separator: ",")
            rows.append([
                "\(report.position)", "\(report.backend)", state, report.backend === current ? "yes" : "no",
                "\(c.activeConnections)", "\(c.connectionsTotal)", "\(c.bytesFromClient)", "\(c.bytesToClient)", "\(c.connectErrors)",
                report.sinceLastChange.map { GoDuration.formatApproximately($0) + " ago" } ?? "never",
                report.server.map(Self.serverColumn) ?? "-",
            ])
        }
        let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        let text = rows.map { row in
            zip(row, widths).map { $0 + String(repeating: " ", count: $1 - $0.count) }.joined(separator: "  ")
                .replacing(/\s+$/, with: "")
        }.joined(separator: "\n")
        let refusal = proxy.registry.snapshot.refusalReason.map { "\nrefusing new clients: \($0)" } ?? ""
        var source = ""
        if let backendSource = proxy.backendSource {
            let status = backendSource.status
            source = "\nbackends from etcd \(backendSource.settings.prefix) (layout \(backendSource.settings.layout.rawValue)), revision \(status.revision)"
                + (status.problem.map { "; \($0)" } ?? "")
        }
        if let member = proxy.groupMember {
            let group = member.status
            let decided = group.decision.map { "\($0.backend ?? "no backend") (epoch \($0.epoch), by \($0.by): \($0.reason))" } ?? "none yet"
            let held = [("held", group.decision?.held), ("disabled", group.decision?.disabled), ("draining", group.decision?.draining)]
                .compactMap { name, list in list.flatMap { $0.isEmpty ? nil : "; \(name): \($0.joined(separator: ", "))" } }.joined()
            source += "\ngroup \(member.settings.name): decision \(decided)\(held); \(group.liveMembers) live member(s), leader \(group.leader ?? "none")"
                + (group.isLeader ? " (this member)" : "") + (group.lost.map { "; \($0)" } ?? "")
            if let current = proxy.registry.snapshot.current, proxy.registry.snapshot.status(of: current)?.isUp == false {
                source += "\nthis member sees \(current) down; it follows the group's decision, which a quorum keeps"
            }
        }
        return text + refusal + source
    }

    /// A server's role in a few characters: "writable", "read-only", "replica 3s", "replica stopped".
    private static func serverColumn(_ server: MySQLServerState) -> String {
        guard let replica = server.replica else { return server.isWritable ? "writable" : "read-only" }
        let role = server.isWritable ? "writable replica" : "replica"
        guard replica.isReplicating else { return "\(role) stopped" }
        return "\(role) \(replica.secondsBehind.map { "\($0)s" } ?? "?s")"
    }

    private static func serverJSON(_ server: MySQLServerState) -> JSON {
        .object([
            ("writable", .bool(server.isWritable)),
            ("read_only", .bool(server.readOnly)),
            ("innodb_read_only", .bool(server.innodbReadOnly)),
            ("replicating", .bool(server.replica?.isReplicating ?? false)),
            ("seconds_behind", server.replica?.secondsBehind.map { JSON.int($0) } ?? .null),
        ])
    }

    private func success(_ text: String, json: JSON?) -> Reply {
        Reply(ok: true, text: json.map { JSON.object([("ok", .bool(true))] + Self.fields($0)).text } ?? text)
    }

    private func failure(_ message: String, json: Bool) -> Reply {
        Reply(ok: false, text: json ? JSON.object([("ok", .bool(false)), ("error", .string(message))]).text : "error: \(message)")
    }

    private static func fields(_ json: JSON) -> [(String, JSON)] {
        if case .object(let fields) = json { return fields }
        return [("result", json)]
    }
}

extension Duration {
    /// Seconds as a floating-point number, for JSON.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
