import ArgumentParser
import Logging
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
        exit(await run(command).rawValue)
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

    static func run(_ command: TCPFallbackCommand) async -> ExitStatus {
        // Writes to a peer that has gone must fail with EPIPE, not kill the process.
        signal(SIGPIPE, SIG_IGN)
        var configuration: ProxyConfiguration
        let sink: (any LogSink)?
        do {
            configuration = try command.makeConfiguration()
            sink = try makeSink(command)
            if let running = command.takeOver {
                // An upgrade: the running process's listening sockets, served instead of binding.
                configuration.inheritedListeners = try ListenerHandover.takeOver(from: running)
            } else {
                configuration.inheritedListeners = try inheritedListeners(for: command.listenSelection)
            }
        } catch {
            printError("tcp-fallback: \(error)")
            return .failure
        }
        let logger = Logger(label: "tcp-fallback") { _ in
            guard let sink else { return SwiftLogNoOpLogHandler() }
            return SinkLogHandler(sink: sink, level: command.debug ? .debug : .info)
        }
        // Trap the signals before listening, so that none that comes early is lost.
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint, .sighup, .sigusr1, .sigusr2)
        if let path = command.cpuProfile {
            do {
                try CPUProfiler.shared.start(writingTo: path)
            } catch {
                printError("tcp-fallback: \(error)")
                return .failure
            }
        }

        // The manual failback policy's held backends and etcd's last list, as the last run left them.
        var saved = StateFile.Contents()
        if let path = configuration.failback.stateFile {
            do {
                saved = try StateFile.load(path)
                try StateFile.checkWritable(path)
            } catch {
                printError("tcp-fallback: \(error)")
                return .failure
            }
        }
        var origin = ""
        if let etcd = configuration.etcd {
            (configuration.backends, origin) = await EtcdBackendSource.startingList(
                settings: etcd, saved: saved.backends, seeds: configuration.backends, logger: logger)
        }
        let held = saved.held
        let proxy = TCPFallbackProxy(configuration: configuration, logger: logger, heldAtStart: held, keptList: saved.backends)
        let address: String
        do {
            let bound = try await proxy.start()
            address = Endpoint(host: bound.ipAddress ?? configuration.listen.host, port: bound.port ?? 0).description
        } catch {
            // Said on stderr, where whoever started us looks, and in the log if that is elsewhere.
            printError("tcp-fallback: \(error)")
            if !((sink as? FileDescriptorSink)?.isStandardError ?? false) { logger.critical("\(error)") }
            await proxy.shutdown(grace: .zero)
            return .failure
        }
        let backends = (configuration.backends.isEmpty ? "none yet" : configuration.backends.map(\.description).joined(separator: ", ")) + origin
        let inherited =
            configuration.inheritedListeners.isEmpty ? ""
            : command.takeOver.map { " (sockets taken over from the process at \($0))" } ?? " (socket from systemd)"
        let role = configuration.roles.role == .any ? "" : "; role \(configuration.roles.role.rawValue)"
        logger.notice(
            "tcp-fallback \(TCPFallbackVersion.current) listening on \(address)\(inherited); \(proxy.dataLoopCount) data loop(s); backends in order: \(backends) (timeout \(command.timeout), probe delay \(configuration.probeDelay.map(GoDuration.format) ?? "off"))\(role)",
            metadata: ["event": "started"])

        for endpoint in held.sorted(by: { $0.description < $1.description }) {
            logger.notice(
                "backend \(endpoint) stays held out of rotation (state file \(configuration.failback.stateFile!)); allow it with: tcp-fallback ctl failback \(endpoint)",
                metadata: ["backend": "\(endpoint)", "event": "held"])
        }

        // systemd: ready now that the listener accepts, then status and watchdog.
        let notifier = SystemdNotifier()
        let status = StatusUpdater(proxy: proxy, notifier: notifier)
        notifier.ready(status: status.current)
        let statusTask = Task { if notifier.isEnabled { await status.run() } }
        let watchdog = notifier.watchdogInterval.map { interval in
            Watchdog(loops: proxy.watchedLoops, timer: proxy.eventLoopGroup.next(), interval: interval, ping: { notifier.watchdogPing() })
        }
        watchdog?.start()

        if let running = command.takeOver {
            // Serving: the old process may go. Its control socket closes first, so ours can
            // open at the same path; its connections finish within its own -shutdown-grace.
            do {
                try ListenerHandover.retire(running)
                logger.notice("took the listening sockets over from the process at \(running), which is retiring", metadata: ["event": "took_over"])
            } catch {
                logger.error("\(error); both processes accept on the same sockets until it is stopped", metadata: ["event": "took_over"])
            }
        }

        let stats = StatsReporter(proxy: proxy, logger: logger)
        var control: ControlServer?
        if let path = command.controlPath {
            do {
                control = try await ControlServer.start(
                    path: path, service: ControlService(proxy: proxy, stats: stats, profiling: ProfilerControl()),
                    group: proxy.eventLoopGroup, logger: logger)
                logger.info("control socket at \(path)", metadata: ["event": "control_open"])
            } catch {
                printError("tcp-fallback: \(error)")
                logger.critical("\(error)")
                await proxy.shutdown(grace: .zero)
                return .failure
            }
        }
        var metricsServer: MetricsServer?
        if let address = command.metricsAddress, let endpoint = try? Endpoint(parsing: address, role: .listen) {
            do {
                let server = try await MetricsServer.start(on: endpoint, metrics: await ProxyMetrics(proxy: proxy), group: proxy.eventLoopGroup)
                let bound = server.localAddress.map { Endpoint(host: $0.ipAddress ?? endpoint.host, port: $0.port ?? endpoint.port) } ?? endpoint
                logger.info("metrics at http://\(bound)/metrics", metadata: ["event": "metrics_open"])
                metricsServer = server
            } catch {
                printError("tcp-fallback: \(error)")
                logger.critical("\(error)")
                await control?.stop()
                await proxy.shutdown(grace: .zero)
                return .failure
            }
        }
        let statsInterval = configuration.statsInterval
        let periodicStats = Task {
            if let statsInterval { await stats.run(every: statsInterval) }
        }
        for await signal in signals {
            switch signal {
            case .sighup:
                notifier.reloading()
                do {
                    try sink?.reopen()
                    if let path = command.logFile, !command.quiet, !command.journal, !command.syslog {
                        logger.notice("reopened log file \(path)")
                    }
                } catch {
                    logger.error("\(error); still logging to the old file")
                }
                notifier.ready(status: status.current)
            case .sigusr1:
                await stats.log()
            case .sigusr2:
                writeProfile(logger: logger) { try CPUProfiler.shared.write() }
            default:
                notifier.stopping()
                logger.notice("received \(signal), shutting down", metadata: ["event": "shutdown"])
                periodicStats.cancel()
                statusTask.cancel()
                watchdog?.stop()
                await control?.stop()
                await metricsServer?.stop()
                await proxy.shutdown(grace: configuration.shutdownGrace)
                if CPUProfiler.shared.isRunning {
                    writeProfile(logger: logger) { try CPUProfiler.shared.stop() }
                }
                logger.notice("stopped", metadata: ["event": "stopped"])
                return .success
            }
        }
        return .success
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

    /// The listening sockets systemd passed that the listen argument selects; none without
    /// socket activation (unless the argument asks for it, which is then an error).
    static func inheritedListeners(for selection: SocketActivation.Selection) throws -> [Int32] {
        let sockets = SocketActivation.takeInheritedSockets()
        if sockets.isEmpty {
            guard case .matching = selection else {
                throw SocketActivation.SelectionError(
                    description: "the listen address \"systemd\" needs socket activation, but no sockets were passed (LISTEN_FDS is not set for this process)")
            }
            return []
        }
        return try SocketActivation.select(sockets, selection).map(\.descriptor)
    }

    static func printError(_ message: String) {
        FileDescriptorSink.standardError().writeLine(message)
    }
}
