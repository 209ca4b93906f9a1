import Logging
import TCPFallback

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Re-reads the configuration file and applies what changed (SIGHUP, `ctl reload`): new
/// listeners open, removed ones stop accepting while their connections go on, changed backends
/// are replaced in place, and a listener whose other settings changed restarts on its own
/// sockets. A file that does not load changes nothing. One reload runs at a time: a second one
/// asked meanwhile (SIGHUP during `ctl reload`) waits for the first, then reads the file again.
actor ConfigurationReloader {
    private let commandLine: [String]
    private let listeners: ListenerSet
    private let logger: Logger
    private let notifier: SystemdNotifier
    private let status: @Sendable () -> String
    private var current: LoadedConfiguration
    /// Listeners taken out that are still finishing their connections.
    private var retiring: [Task<Void, Never>] = []
    /// The reload being applied, which the next one waits for.
    private var inProgress: Task<ControlService.Reply, Never>?
    /// Set at shutdown: no reload starts any more.
    private var closed = false

    init(
        loaded: LoadedConfiguration, commandLine: [String], listeners: ListenerSet, logger: Logger, notifier: SystemdNotifier,
        status: @escaping @Sendable () -> String
    ) {
        self.current = loaded
        self.commandLine = commandLine
        self.listeners = listeners
        self.logger = logger
        self.notifier = notifier
        self.status = status
    }

    /// Reloads once the reload in progress, if any, is done; the reply says what changed, or
    /// why nothing did.
    func reload() async -> ControlService.Reply {
        // The actor runs one caller at a time between suspensions: whoever resumes first
        // finds no reload in progress and starts one; the others wait for that one in turn.
        await waitForReloadInProgress()
        guard !closed else { return ControlService.Reply(ok: false, text: "shutting down: no reload") }
        let task = Task { await self.apply() }
        inProgress = task
        let reply = await task.value
        if inProgress == task { inProgress = nil }
        return reply
    }

    /// At shutdown: waits for a reload in progress and refuses later ones, so that the set of
    /// listeners stops changing before it is shut down.
    func stopReloading() async {
        closed = true
        await waitForReloadInProgress()
    }

    /// Until no reload is in progress. A finished reload is cleared here too: its own caller
    /// may not have resumed yet, and awaiting a finished task does not suspend.
    private func waitForReloadInProgress() async {
        while let running = inProgress {
            _ = await running.value
            if inProgress == running { inProgress = nil }
        }
    }

    private func apply() async -> ControlService.Reply {
        notifier.reloading()
        defer { notifier.ready(status: status()) }
        let path = current.path
        let loaded: LoadedConfiguration
        do {
            loaded = try LoadedConfiguration.load(path, commandLine: commandLine)
        } catch {
            logger.error("reload refused: \(error); nothing changed", metadata: ["event": "reload"])
            return ControlService.Reply(ok: false, text: "reload refused: \(error); nothing changed")
        }
        let change = ListenerSetChange(from: current.listeners.map(Self.describe), to: loaded.listeners.map(Self.describe))
        let processChanged = Self.processSettings(current.process) != Self.processSettings(loaded.process)
        // What runs, step by step: a step that fails leaves its listener as it was here, so
        // that the next reload tries it again.
        var running = current.listeners
        // Every listener that leaves its address stops accepting first, so that listeners
        // trading addresses (or taking a removed one's) can bind them.
        for step in change.steps {
            switch step {
            case .remove(let name), .restart(let name, sameSockets: false):
                await listeners.entry(named: name)?.proxy.stopAccepting()
            default:
                continue
            }
        }
        var done: [String] = []
        var failed: [String] = []
        func wanted(_ name: String) -> LoadedConfiguration.Listener { loaded.listeners.first { $0.name == name }! }
        for step in change.steps {
            switch step {
            case .remove(let name):
                running.removeAll { $0.name == name }
                guard let entry = listeners.remove(named: name) else { continue }
                await retire(entry, why: "removed from \(path)")
                done.append("removed \(name)")
            case .add(let name):
                let listener = wanted(name)
                do {
                    let proxy = try await ListenerLauncher.start(
                        name: name, configuration: listener.configuration, listenText: listener.command.addresses.first, inherited: [], origin: "",
                        timeout: "\(listener.command.timeout)", logger: logger)
                    listeners.install(ListenerSet.Entry(name: name, proxy: proxy))
                    running.append(listener)
                    done.append("added \(name)")
                } catch {
                    logger.error("reload: \(error); listener \(name) not added", metadata: ["event": "reload"])
                    failed.append("\(error)")
                }
            case .restart(let name, let sameSockets):
                let listener = wanted(name)
                guard let old = listeners.entry(named: name) else { continue }
                // The same address: the new listener serves the old one's sockets (its own
                // descriptors for them), so connections waiting to be accepted are not lost.
                // Another address: the old one stops first, its port may be reused.
                let inherited = sameSockets ? Self.copiesOfSockets(of: old) : []
                do {
                    let proxy = try await ListenerLauncher.start(
                        name: name, configuration: listener.configuration, listenText: listener.command.addresses.first, inherited: inherited, origin: " (the sockets of its previous settings)",
                        timeout: "\(listener.command.timeout)", logger: logger)
                    listeners.install(ListenerSet.Entry(name: name, proxy: proxy))
                    await retire(old, why: "its settings changed")
                    running = running.map { $0.name == name ? listener : $0 }
                    done.append("restarted \(name)")
                } catch {
                    // A proxy that did not start owns none of the descriptors it was given.
                    for fd in inherited { close(fd) }
                    if sameSockets {
                        logger.error("reload: \(error); listener \(name) keeps its previous settings", metadata: ["event": "reload"])
                    } else {
                        // Its old address is closed already: it is gone until a reload adds it.
                        listeners.remove(named: name)
                        await retire(old, why: "its new address failed")
                        running.removeAll { $0.name == name }
                        logger.error("reload: \(error); listener \(name) is stopped", metadata: ["event": "reload"])
                    }
                    failed.append("\(error)")
                }
            case .rename(let from, let to):
                let listener = wanted(to)
                guard let old = listeners.entry(named: from) else { continue }
                // The same address under another name: the new listener serves the old one's
                // sockets, as a restart does.
                let inherited = Self.copiesOfSockets(of: old)
                do {
                    let proxy = try await ListenerLauncher.start(
                        name: to, configuration: listener.configuration, listenText: listener.command.addresses.first, inherited: inherited,
                        origin: " (the sockets of listener \(from))", timeout: "\(listener.command.timeout)", logger: logger)
                    listeners.remove(named: from)
                    listeners.install(ListenerSet.Entry(name: to, proxy: proxy))
                    await retire(old, why: "renamed \(to) in \(path)")
                    running.removeAll { $0.name == from }
                    running.append(listener)
                    done.append("renamed \(from) to \(to)")
                } catch {
                    for fd in inherited { close(fd) }
                    logger.error("reload: \(error); listener \(from) keeps its name and settings", metadata: ["event": "reload"])
                    failed.append("\(error)")
                }
            case .replaceBackends(let name, _):
                let listener = wanted(name)
                guard let entry = listeners.entry(named: name) else { continue }
                let applied = await entry.proxy.registry.replaceBackends(listener.backends, source: "the configuration file")
                running = running.map { $0.name == name ? listener : $0 }
                done.append("\(name): \(applied.summary)")
            }
        }
        let order = loaded.listeners.map(\.name)
        listeners.order(by: order)
        running.sort { (order.firstIndex(of: $0.name) ?? .max) < (order.firstIndex(of: $1.name) ?? .max) }
        if processChanged {
            logger.warning(
                "reload: process-wide keys (\(TCPFallbackCommand.processKeys.sorted().joined(separator: ", "))) changed in \(path); they take effect when the process restarts",
                metadata: ["event": "reload"])
        }
        current = LoadedConfiguration(path: path, process: loaded.process, listeners: running)
        let summary = done.isEmpty ? "no change" : done.joined(separator: "; ")
        if failed.isEmpty {
            logger.notice("reloaded \(path): \(summary)", metadata: ["event": "reload"])
            return ControlService.Reply(ok: true, text: "reloaded \(path): \(summary)")
        }
        return ControlService.Reply(ok: false, text: "reloaded \(path) in part: \(summary); failed: \(failed.joined(separator: "; "))")
    }

    /// Takes a listener out of service: it stops accepting at once (its port is free), and its
    /// open connections finish within the shutdown grace, in the background.
    private func retire(_ entry: ListenerSet.Entry, why: String) async {
        await entry.proxy.stopAccepting()
        let open = entry.proxy.counters.values.openClientConnections
        logger.notice(
            "listener \(entry.name) stopped accepting (\(why)); \(open) open connection(s) finish within \(GoDuration.format(current.process.shutdownGrace.duration))",
            metadata: ["event": "reload"])
        let grace = current.process.shutdownGrace.duration
        retiring.append(Task { await entry.proxy.shutdown(grace: grace) })
    }

    /// Descriptors of this process's own for the listening sockets of `entry`, for a listener
    /// that takes them over (a restart, a rename); whoever gets them closes them.
    private static func copiesOfSockets(of entry: ListenerSet.Entry) -> [Int32] {
        entry.proxy.listeningDescriptors.map { dup($0) }.filter { $0 >= 0 }
    }

    /// Waits for the listeners taken out to finish (at shutdown).
    func finishRetiring() async {
        for task in retiring { await task.value }
        retiring.removeAll()
    }

    private static func describe(_ listener: LoadedConfiguration.Listener) -> ListenerSetChange.Listener {
        ListenerSetChange.Listener(
            name: listener.name, settings: listener.settings, listen: listener.command.addresses.first ?? "",
            backends: listener.backends, fromEtcd: listener.configuration.etcd != nil)
    }

    /// The process-wide settings, to tell whether a reload changed them (they are not applied).
    private static func processSettings(_ command: TCPFallbackCommand) -> [String] {
        [
            "\(command.controlPath ?? "")", "\(command.metricsAddress ?? "")", "\(command.logFile ?? "")", "\(command.cpuProfile ?? "")",
            "\(command.debug)", "\(command.quiet)", "\(command.journal)", "\(command.syslog)", command.syslogFacility, "\(command.stats)",
            "\(command.shutdownGrace)",
        ]
    }
}
