import ArgumentParser
import Logging
import TCPFallback
import UnixSignals

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Start-up of the `tcp-fallback` executable: parse, open the log, listen, then serve until
/// SIGTERM or SIGINT, handling SIGHUP (reopen the log) and SIGUSR1 (log stats) meanwhile.
public enum CommandLineTool {
    /// Exit statuses: 0 after a requested shutdown, 1 for a failure to start, 2 for a bad command line.
    public enum ExitStatus: Int32, Sendable {
        case success = 0, failure = 1, usage = 2
    }

    public static func main(arguments: [String] = Array(CommandLine.arguments.dropFirst())) async -> Never {
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
                arguments, booleanFlags: TCPFallbackCommand.booleanFlags, valueOptions: TCPFallbackCommand.valueOptions)
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
        let configuration: ProxyConfiguration
        let sink: (any LogSink)?
        do {
            configuration = try command.makeConfiguration()
            sink = try makeSink(command)
        } catch {
            printError("tcp-fallback: \(error)")
            return .failure
        }
        let logger = Logger(label: "tcp-fallback") { _ in
            guard let sink else { return SwiftLogNoOpLogHandler() }
            return LineLogHandler(sink: sink, level: command.debug ? .debug : .info, timestamps: !(sink is SyslogSink))
        }
        // Trap the signals before listening, so that none that comes early is lost.
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint, .sighup, .sigusr1)

        let proxy = TCPFallbackProxy(configuration: configuration, logger: logger)
        let address: String
        do {
            let bound = try await proxy.start()
            address = Endpoint(host: bound.ipAddress ?? configuration.listen.host, port: bound.port ?? 0).description
        } catch {
            // Said once on stderr, where whoever started us looks, and in the log if that is elsewhere.
            printError("tcp-fallback: \(error)")
            if !((sink as? FileDescriptorSink)?.isStandardError ?? false) { logger.critical("\(error)") }
            await proxy.shutdown(grace: .zero)
            return .failure
        }
        let backends = configuration.backends.map(\.description).joined(separator: ", ")
        logger.notice(
            "tcp-fallback \(TCPFallbackVersion.current) listening on \(address); backends in order: \(backends) (timeout \(command.timeout), probe delay \(configuration.probeDelay.map(GoDuration.format) ?? "off"))",
            metadata: ["event": "started"])

        let stats = StatsReporter(proxy: proxy, logger: logger)
        let periodicStats = Task {
            if let interval = configuration.statsInterval { await stats.run(every: interval) }
        }
        for await signal in signals {
            switch signal {
            case .sighup:
                do {
                    try sink?.reopen()
                    if command.logFile != nil { logger.notice("reopened log file \(command.logFile!)") }
                } catch {
                    logger.error("\(error); still logging to the old file")
                }
            case .sigusr1:
                await stats.log()
            default:
                logger.notice("received \(signal), shutting down", metadata: ["event": "shutdown"])
                periodicStats.cancel()
                await proxy.shutdown(grace: configuration.shutdownGrace)
                logger.notice("stopped", metadata: ["event": "stopped"])
                return .success
            }
        }
        return .success
    }

    /// The one log destination: none with -quiet, else syslog, else the log file, else stderr.
    static func makeSink(_ command: TCPFallbackCommand) throws -> (any LogSink)? {
        if command.quiet { return nil }
        if command.syslog { return SyslogSink() }
        if let path = command.logFile { return try FileDescriptorSink(appendingTo: path) }
        return FileDescriptorSink.standardError()
    }

    static func printError(_ message: String) {
        FileDescriptorSink.standardError().write(message, level: .error)
    }
}
