import ArgumentParser
import Logging
import NIOPosix
import ServiceLifecycle
import TCPFallback
import UnixSignals

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Start-up of the `tcp-fallback` executable: parse, open the log, take or bind the listener,
/// tell systemd, then serve until SIGTERM or SIGINT, handling SIGHUP (reopen the log) and
/// SIGUSR1 (log stats) meanwhile.
public enum CommandLineTool {
    /// Exit statuses: 0 after a requested shutdown, 1 for a failure to start, 2 for a bad command line.
    public enum ExitStatus: Int32, Sendable {
        case success = 0, failure = 1, usage = 2
    }

    public static func main(arguments: [String] = Array(CommandLine.arguments.dropFirst())) async -> Never {
        if arguments.first == "ctl" {
            exit(ControlClient.main(Array(arguments.dropFirst())).rawValue)
        }
        let command: TCPFallbackCommand
        switch parse(arguments) {
        case .success(let parsed):
            command = parsed
        case .failure(let outcome):
            if outcome.status == .success {
                print(outcome.message)
            } else {
                printError(outcome.message)
            }
            exit(outcome.status.rawValue)
        }
        exit(await run(command, arguments: arguments).rawValue)
    }

    /// What parsing ended with when it did not produce a command: help or version text to
    /// print (status 0), or an error line plus a pointer to `--help` (status 2).
    struct ParseOutcome: Error {
        let status: ExitStatus
        let message: String
    }

    static func parse(_ arguments: [String]) -> Result<TCPFallbackCommand, ParseOutcome> {
        do {
            let normalized = try GoFlagSyntax.normalize(
                arguments, booleanFlags: TCPFallbackCommand.booleanFlags, booleanOptions: TCPFallbackCommand.booleanOptions,
                valueOptions: TCPFallbackCommand.valueOptions)
            return .success(try TCPFallbackCommand.parse(normalized))
        } catch {
            if TCPFallbackCommand.exitCode(for: error) == .success {
                return .failure(ParseOutcome(status: .success, message: TCPFallbackCommand.fullMessage(for: error)))
            }
            let message = TCPFallbackCommand.message(for: error)
            return .failure(
                ParseOutcome(status: .usage, message: "tcp-fallback: \(message)\nRun 'tcp-fallback --help' for usage."))
        }
    }

    /// What the process serves: the command line's one listener, or a file's named ones.
    struct Plan {
        /// The process-wide settings (log, control socket, metrics, ...).
        let process: TCPFallbackCommand
        let listeners: [(name: String?, command: TCPFallbackCommand, configuration: ProxyConfiguration)]
        /// The file, when there is one (reloads re-read it).
        let loaded: LoadedConfiguration?
    }

    static func plan(_ command: TCPFallbackCommand, arguments: [String]) throws(ConfigurationError) -> Plan {
        guard let path = command.config else {
            // validate() built it once already; it reads files (-check-password-file), which
            // may have changed since.
            do {
                let configuration = try command.makeConfiguration()
                return Plan(process: command, listeners: [(nil, command, configuration)], loaded: nil)
            } catch {
                throw ConfigurationError(path: "command line", line: nil, key: nil, message: TCPFallbackCommand.message(for: error))
            }
        }
        let loaded = try LoadedConfiguration.load(path, commandLine: arguments)
        return Plan(process: loaded.process, listeners: loaded.listeners.map { ($0.name, $0.command, $0.configuration) }, loaded: loaded)
    }

    /// Start-up, service and shutdown. Everything that can fail to open opens first, in order
    /// (log, profile, sockets, listeners, control socket, metrics), and a failure undoes what
    /// opened before it; then the parts run as one `ServiceGroup`, whose list below is the
    /// order of start and, reversed, of shutdown.
    static func run(_ command: TCPFallbackCommand, arguments: [String] = []) async -> ExitStatus {
        // Writes to a peer that has gone must fail with EPIPE, not kill the process.
        signal(SIGPIPE, SIG_IGN)
        let plan: Plan
        do {
            plan = try Self.plan(command, arguments: GoFlagSyntax.normalizedForReload(arguments))
        } catch {
            printError("tcp-fallback: \(error)")
            return .usage
        }
        if command.checkConfig, let loaded = plan.loaded {
            print(loaded.summary + "\nconfiguration OK")
            return .success
        }
        let process = plan.process
        // The program as started (a link stays a link: an upgrade runs what it points to then).
        let executable = CommandLine.arguments.first.flatMap { $0.isEmpty ? nil : $0 } ?? ProcessSpawn.currentExecutable() ?? "tcp-fallback"
        let sink: (any LogSink)?
        var available: [SocketActivation.InheritedSocket] = []
        do {
            sink = try makeSink(process)
            if let running = command.takeOver {
                // An upgrade: the running process's listening sockets, served instead of
                // binding, named by the listener that served them.
                available = try ListenerHandover.takeOver(from: running).map {
                    SocketActivation.InheritedSocket(
                        descriptor: $0.descriptor, name: $0.listener ?? "handed-over",
                        address: SocketActivation.boundStreamAddress($0.descriptor))
                }
            } else {
                available = SocketActivation.takeInheritedSockets()
            }
        } catch {
            printError("tcp-fallback: \(error)")
            return .failure
        }
        let logger = Logger(label: "tcp-fallback") { _ in
            guard let sink else { return SwiftLogNoOpLogHandler() }
            return SinkLogHandler(sink: sink, level: process.debug ? .debug : .info)
        }
        // Trap the signals before listening, so that none that comes early is lost.
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint, .sighup, .sigusr1, .sigusr2)

        // What opened so far, closed in reverse order if a later step fails.
        var opened: [@Sendable () async -> Void] = []
        func abort(_ message: String) async -> ExitStatus {
            // Said on stderr, where whoever started us looks, and in the log if that is elsewhere.
            printError("tcp-fallback: \(message)")
            if !((sink as? FileDescriptorSink)?.isStandardError ?? false) { logger.critical("\(message)") }
            for close in opened.reversed() { await close() }
            return .failure
        }
        if let path = process.cpuProfile {
            do {
                try CPUProfiler.shared.start(writingTo: path)
            } catch {
                return await abort("\(error)")
            }
        }

        // The listeners, each on its sockets: inherited ones if any fit it, else its own.
        let listeners = ListenerSet(isNamed: plan.loaded != nil)
        var chosen: Set<Int32> = []
        for listener in plan.listeners {
            var inherited: [Int32] = []
            if !available.isEmpty && command.takeOver != nil && plan.loaded == nil {
                // An upgrade of a command line's one listener: every socket the old process
                // passed is this listener's (its address may say port 0).
                inherited = available.map(\.descriptor)
                chosen.formUnion(inherited)
            } else if !available.isEmpty {
                // An upgrade's sockets go to the listener of the same name; systemd's (and
                // those of an old version that does not name them) by the listen address.
                var selection = listener.command.listenSelection
                if command.takeOver != nil, let name = listener.name, available.contains(where: { $0.name == name }) {
                    selection = .named(name)
                }
                do {
                    inherited = try SocketActivation.choose(available, selection).map(\.descriptor).filter { !chosen.contains($0) }
                } catch {
                    // With a file, a listener that no passed socket fits binds its own address.
                    if plan.loaded == nil || SocketActivation.Selection(placeholder: listener.command.addresses.first ?? "") != nil {
                        for socket in available where !chosen.contains(socket.descriptor) { close(socket.descriptor) }
                        return await abort("\(error)")
                    }
                }
                chosen.formUnion(inherited)
            } else if SocketActivation.Selection(placeholder: listener.command.addresses.first ?? "") != nil {
                return await abort("the listen address \"\(listener.command.addresses.first!)\" needs socket activation, but no sockets were passed (LISTEN_FDS is not set for this process)")
            }
            let origin = command.takeOver.map { " (sockets taken over from the process at \($0))" } ?? " (socket from systemd)"
            do {
                let proxy = try await ListenerLauncher.start(
                    name: listener.name, configuration: listener.configuration, listenText: listener.command.addresses.first, inherited: inherited, origin: origin,
                    timeout: "\(listener.command.timeout)", logger: logger)
                listeners.install(ListenerSet.Entry(name: listener.name ?? "default", proxy: proxy))
                opened.append { await proxy.shutdown(grace: .zero) }
            } catch {
                return await abort(error.description)
            }
        }
        for socket in available where !chosen.contains(socket.descriptor) { close(socket.descriptor) }

        // systemd: ready now that the listeners accept, then status and watchdog.
        let notifier = SystemdNotifier()
        let status = StatusUpdater(listeners: listeners, notifier: notifier)
        // After an upgrade, READY=1 once the old process has made this one the main process.
        if command.takeOver == nil { notifier.ready(status: status.current) }
        // Checks, the control socket and metrics are light: one thread of their own serves
        // them, whatever listeners come and go.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        opened.append { try? await group.shutdownGracefully() }
        let watchdog = notifier.watchdogInterval.map { interval in
            Watchdog(loops: { listeners.watchedLoops + [NIOWatchedLoop(loop: group.next())] }, timer: group.next(), interval: interval, ping: { notifier.watchdogPing() })
        }
        watchdog?.start()

        if let running = command.takeOver {
            // Serving: the old process may go. Its control socket closes first, so ours can
            // open at the same path; its connections finish within its own -shutdown-grace.
            do {
                try ListenerHandover.retire(running, pid: getpid())
                logger.notice("took the listening sockets over from the process at \(running), which is retiring", metadata: ["event": "took_over"])
                notifier.ready(status: status.current)
            } catch {
                logger.error("\(error); both processes accept on the same sockets until it is stopped", metadata: ["event": "took_over"])
            }
        }

        let stats = StatsReporter(listeners: listeners, logger: logger)
        let reloader = plan.loaded.map { loaded in
            ConfigurationReloader(
                loaded: loaded, commandLine: GoFlagSyntax.normalizedForReload(arguments), listeners: listeners, logger: logger, notifier: notifier,
                status: { status.current })
        }
        var control: ControlServer?
        if let path = process.controlPath {
            do {
                var reload: (@Sendable () async -> ControlService.Reply)?
                if let reloader { reload = { await reloader.reload() } }
                let upgrade = ProcessUpgrade(executable: executable, arguments: arguments, controlPath: path, logger: logger)
                let service = ControlService(
                    listeners: listeners, stats: stats, logger: logger, profiling: ProfilerControl(), reload: reload,
                    upgrade: { await upgrade.start() }, retiring: { upgrade.retiring(requestedBy: $0) })
                control = try await ControlServer.start(path: path, service: service, group: group, logger: logger)
                logger.info("control socket at \(path)", metadata: ["event": "control_open"])
            } catch {
                return await abort("\(error)")
            }
        }
        var metricsServer: MetricsServer?
        if let address = process.metricsAddress, let endpoint = try? Endpoint(parsing: address, role: .listen) {
            do {
                let server = try await MetricsServer.start(on: endpoint, metrics: await ProxyMetrics(listeners: listeners), group: group)
                let bound = server.localAddress.map { Endpoint(host: $0.ipAddress ?? endpoint.host, port: $0.port ?? endpoint.port) } ?? endpoint
                logger.info("metrics at http://\(bound)/metrics", metadata: ["event": "metrics_open"])
                metricsServer = server
            } catch {
                await control?.stop()
                return await abort("\(error)")
            }
        }

        let statsInterval = plan.listeners[0].configuration.statsInterval
        let (controlServer, metrics) = (control, metricsServer)
        let services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: ListenersService(listeners: listeners, grace: process.shutdownGrace.duration, reloader: reloader), successTerminationBehavior: .ignore),
            .init(service: RepeatingService(description: "status") { if notifier.isEnabled { await status.run() } }, successTerminationBehavior: .ignore),
            .init(service: RepeatingService(description: "stats") { if let statsInterval { await stats.run(every: statsInterval) } }, successTerminationBehavior: .ignore),
            .init(service: CloseOnShutdown(description: "watchdog") { watchdog?.stop() }, successTerminationBehavior: .ignore),
            .init(service: CloseOnShutdown(description: "metrics") { await metrics?.stop() }, successTerminationBehavior: .ignore),
            .init(service: CloseOnShutdown(description: "control socket") { await controlServer?.stop() }, successTerminationBehavior: .ignore),
            .init(
                service: SignalService(
                    signals: signals, logger: logger,
                    hangUp: {
                        await reopenLog(sink: sink, process: process, logger: logger, notifier: notifier, status: status, reloader: reloader)
                    },
                    logStats: { await stats.log() },
                    writeProfile: { writeProfile(logger: logger) { try CPUProfiler.shared.write() } },
                    stopping: { notifier.stopping() }),
                successTerminationBehavior: .gracefullyShutdownGroup),
        ]
        let serviceGroup = ServiceGroup(configuration: ServiceGroupConfiguration(services: services, logger: Logger(label: "tcp-fallback.services") { _ in SwiftLogNoOpLogHandler() }))
        do {
            try await serviceGroup.run()
        } catch {
            logger.error("\(error)", metadata: ["event": "shutdown"])
        }
        try? await group.shutdownGracefully()
        if CPUProfiler.shared.isRunning {
            writeProfile(logger: logger) { try CPUProfiler.shared.stop() }
        }
        logger.notice("stopped", metadata: ["event": "stopped"])
        return .success
    }

    /// SIGHUP: reopen the log file (after rotation) and, with `-config`, reload the file.
    private static func reopenLog(
        sink: (any LogSink)?, process: TCPFallbackCommand, logger: Logger, notifier: SystemdNotifier, status: StatusUpdater, reloader: ConfigurationReloader?
    ) async {
        do {
            try sink?.reopen()
            if let path = process.logFile, !process.quiet, !process.journal, !process.syslog {
                logger.notice("reopened log file \(path)")
            }
        } catch {
            logger.error("\(error); still logging to the old file")
        }
        if let reloader {
            // In a task of its own: a reload waiting on etcd must not hold SIGTERM back.
            Task { _ = await reloader.reload() }
        } else {
            notifier.reloading()
            notifier.ready(status: status.current)
        }
    }

    private static func writeProfile(logger: Logger, _ write: () throws -> String) {
        do {
            let message = try write()
            logger.notice("\(message)", metadata: ["event": "profile"])
        } catch {
            logger.error("\(error)", metadata: ["event": "profile"])
        }
    }

    /// The one log destination: none with -quiet, else the journal, else syslog, else the log
    /// file, else standard error, unless standard error is the journal (then the journal).
    static func makeSink(_ command: TCPFallbackCommand) throws -> (any LogSink)? {
        if command.quiet { return nil }
        if command.journal { return JournalSink() }
        if command.syslog {
            if let problem = SyslogSink.daemonProblem() {
                printError("tcp-fallback: warning: no syslog daemon listens on \(SyslogSink.socketPath) (\(problem)); syslog messages are lost until one does")
            }
            return SyslogSink(facility: SyslogSink.facilities[command.syslogFacility] ?? LOG_DAEMON)
        }
        if let path = command.logFile { return try FileDescriptorSink(appendingTo: path) }
        if JournalSink.standardErrorIsJournal() { return JournalSink() }
        return FileDescriptorSink.standardError()
    }

    static func printError(_ message: String) {
        FileDescriptorSink.standardError().writeLine(message)
    }
}
