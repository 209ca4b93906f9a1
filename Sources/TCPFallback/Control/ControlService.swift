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
    }

    /// Starts and stops CPU profiles, when the binary has a profiler.
    public protocol Profiling: Sendable {
        func start(writingTo path: String) throws -> String
        func stop() throws -> String
    }

    let proxy: TCPFallbackProxy
    let stats: StatsReporter
    let profiling: (any Profiling)?

    public init(proxy: TCPFallbackProxy, stats: StatsReporter, profiling: (any Profiling)? = nil) {
        self.proxy = proxy
        self.stats = stats
        self.profiling = profiling
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

    public func run(_ command: ControlCommand) async -> Reply {
        let registry = proxy.registry
        func backend(_ name: String) -> Backend? {
            registry.backends.first { $0.endpoint.description == name } ?? Int(name).flatMap {
                registry.backends.indices.contains($0) ? registry.backends[$0] : nil
            }
        }
        func unknown(_ name: String) -> Reply {
            failure("no backend \"\(name)\"; backends: \(registry.backends.map(\.description).joined(separator: ", "))", json: command.json)
        }
        switch command.action {
        case .help:
            return success(ControlCommand.usage.joined(separator: "\n"), json: command.json ? .array(ControlCommand.usage.map(JSON.string)) : nil)
        case .showBackends:
            return await showBackends(json: command.json)
        case .showStats:
            let lines = await stats.lines()
            return success(lines.joined(separator: "\n"), json: command.json ? .object([("stats", .array(lines.map(JSON.string)))]) : nil)
        case .disable(let name), .enable(let name), .drain(let name):
            guard let target = backend(name) else { return unknown(name) }
            let state: AdministrativeState =
                switch command.action {
                case .disable: .disabled
                case .drain: .draining
                default: .enabled
                }
            if let member = proxy.groupMember {
                // For the whole group, through etcd: every member applies it from the decision.
                do {
                    let changed = try await member.setAdministrativeState(target.endpoint, state, by: "an operator on \(member.settings.member)")
                    let text = "\(target) is \(state.rawValue) for group \(member.settings.name)" + (changed ? "" : " (it was already)")
                    return success(text, json: command.json ? .object([("backend", .string("\(target)")), ("state", .string(state.rawValue)), ("group", .string(member.settings.name))]) : nil)
                } catch {
                    return failure("cannot set \(target) \(state.rawValue) for group \(member.settings.name): \(error)", json: command.json)
                }
            }
            await registry.setAdministrativeState(target, state)
            let open = target.connections.count
            let text =
                switch state {
                case .enabled: "\(target) is enabled: back in rotation"
                case .disabled: "\(target) is disabled: no new connections; \(open) open connection(s) go on"
                case .draining: "\(target) is draining: no new connections; \(open) open connection(s) left"
                }
            return success(text, json: command.json ? .object([("backend", .string("\(target)")), ("state", .string(state.rawValue)), ("open_connections", .int(open))]) : nil)
        case .shutdownSessions(let name):
            guard let target = backend(name) else { return unknown(name) }
            let closed = target.connections.closeAll()
            return success("closed \(closed) connection(s) on \(target)", json: command.json ? .object([("backend", .string("\(target)")), ("closed", .int(closed))]) : nil)
        case .failback(let name):
            guard let target = backend(name) else { return unknown(name) }
            guard let status = proxy.registry.snapshot.status(of: target) else { return unknown(name) }
            if let member = proxy.groupMember {
                // The group holds it, for every member: release it in etcd.
                do {
                    let released = try await member.release(target.endpoint, by: "an operator on \(member.settings.member)")
                    let text = released ? "\(target) is back in rotation for group \(member.settings.name)" : "\(target) is not held by group \(member.settings.name): nothing to allow back"
                    return success(text, json: command.json ? .object([("backend", .string("\(target)")), ("was_held", .bool(released))]) : nil)
                } catch {
                    return failure("cannot reach etcd to allow \(target) back for group \(member.settings.name): \(error)", json: command.json)
                }
            }
            var held = await registry.releaseHold(target)
            if status.administrativeState != .enabled {
                await registry.setAdministrativeState(target, .enabled)
                held = true
            }
            let text = held
                ? "\(target) is back in rotation" + (status.isUp ? "" : " (it is down: new clients go to it once it answers)")
                : "\(target) is not held: nothing to allow back"
            return success(text, json: command.json ? .object([("backend", .string("\(target)")), ("was_held", .bool(held))]) : nil)
        case .handOver(let path):
            let listening = proxy.listeningDescriptors
            do {
                try ListenerHandover.send(listening, to: path)
            } catch {
                return failure("cannot hand the listening sockets over: \(error)", json: command.json)
            }
            proxy.logger.notice(
                "handed \(listening.count) listening socket(s) over to a new process (an upgrade); both accept until it asks this one to retire",
                metadata: ["event": "hand_over"])
            return success("handed over \(listening.count) listening socket(s)", json: command.json ? .object([("sockets", .int(listening.count))]) : nil)
        case .retire:
            let open = proxy.counters.values.openClientConnections
            proxy.logger.notice("retiring at the request of the process that took the listening sockets over", metadata: ["event": "retire"])
            // After the answer is on its way: then as on SIGTERM (stop accepting, close the
            // control socket and metrics, let connections finish within -shutdown-grace).
            Task {
                try? await Task.sleep(for: .milliseconds(100))
                kill(getpid(), SIGTERM)
            }
            return success("retiring: no new connections here; \(open) open connection(s) finish within the shutdown grace", json: command.json ? .object([("open_connections", .int(open))]) : nil)
        case .profileStart(let path):
            guard let profiling else { return failure("this build has no CPU profiler", json: command.json) }
            do { return success(try profiling.start(writingTo: path), json: nil) } catch { return failure("\(error)", json: command.json) }
        case .profileStop:
            guard let profiling else { return failure("this build has no CPU profiler", json: command.json) }
            do { return success(try profiling.stop(), json: nil) } catch { return failure("\(error)", json: command.json) }
        }
    }

    private func showBackends(json: Bool) async -> Reply {
        let reports = await proxy.registry.reports()
        let current = proxy.registry.snapshot.current
        if json {
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
            return success("", json: .object(fields))
        }
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
        return success(text + refusal + source, json: nil)
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
