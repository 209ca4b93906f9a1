import ArgumentParser
import TCPFallback

/// A configuration file made into what a process runs: the process-wide settings and one
/// checked `ProxyConfiguration` per listener. Each listener's keys are parsed as a command line
/// by `TCPFallbackCommand` (the flags given with `-config` first, then the file's top level,
/// `defaults` and the listener's own keys, the last given winning), so a key is checked and
/// means exactly what its flag does.
struct LoadedConfiguration {
    /// One listener, ready to start.
    struct Listener {
        let name: String
        let command: TCPFallbackCommand
        let configuration: ProxyConfiguration
        /// Everything that decides how the listener runs except its backends: when only the
        /// backends change, a reload replaces them in place; otherwise the listener restarts.
        let settings: [String]
        let backends: [Endpoint]
    }

    let path: String
    /// The process-wide settings (log, control socket, metrics, ...): the same in every
    /// listener's command, taken from the first.
    let process: TCPFallbackCommand
    let listeners: [Listener]

    /// Loads `path` with `commandLine`, the process's own flags (GNU form, as `GoFlagSyntax`
    /// leaves them), as defaults.
    static func load(_ path: String, commandLine: [String]) throws(ConfigurationError) -> LoadedConfiguration {
        let file = try ConfigurationFile.load(path)
        let inherited = commandLine.filter { argument in
            !["--config=", "--take-over="].contains(where: argument.hasPrefix) && argument != "--check-config"
        }
        var listeners: [Listener] = []
        var listenOwners: [(endpoint: Endpoint, name: String, line: Int)] = []
        var socketNames: [String: (name: String, line: Int)] = [:]
        var stateFiles: [String: String] = [:]
        for listener in file.listeners {
            let command: TCPFallbackCommand
            let configuration: ProxyConfiguration
            let normalized: [String]
            do {
                normalized = try GoFlagSyntax.normalize(
                    inherited + listener.arguments, booleanFlags: TCPFallbackCommand.booleanFlags,
                    booleanOptions: TCPFallbackCommand.booleanOptions, valueOptions: TCPFallbackCommand.valueOptions)
                command = try TCPFallbackCommand.parse(normalized)
                configuration = try command.makeConfiguration()
            } catch {
                throw located(TCPFallbackCommand.message(for: error), in: listener, path: path, commandLine: inherited)
            }
            // Two listeners on one port: the second would fail to bind, or steal the first's
            // clients through SO_REUSEPORT. Port 0 (the kernel picks) and systemd's sockets cannot clash.
            let endpoint = configuration.listen
            if endpoint.port != 0, let owner = listenOwners.first(where: { $0.endpoint.port == endpoint.port && overlaps($0.endpoint.host, endpoint.host) }) {
                throw ConfigurationError(
                    path: path, line: listener.listenLine, key: "listen",
                    message: "listener \(listener.name) listens on \(endpoint), as listener \(owner.name) does (line \(owner.line)): one port, one listener")
            }
            listenOwners.append((endpoint, listener.name, listener.listenLine))
            if SocketActivation.Selection(placeholder: listener.listen) != nil {
                if let owner = socketNames[listener.listen] {
                    throw ConfigurationError(
                        path: path, line: listener.listenLine, key: "listen",
                        message: "listener \(listener.name) serves \(listener.listen), as listener \(owner.name) does (line \(owner.line)): one socket, one listener")
                }
                socketNames[listener.listen] = (listener.name, listener.listenLine)
            }
            if let stateFile = configuration.failback.stateFile {
                if let owner = stateFiles[stateFile] {
                    throw ConfigurationError(
                        path: path, line: listener.keyLines["state-file"] ?? listener.line, key: "state-file",
                        message: "listener \(listener.name) uses the state file \(stateFile) of listener \(owner): each listener needs its own")
                }
                stateFiles[stateFile] = listener.name
            }
            // The process-wide keys are in every listener's command, but changing them restarts no listener.
            let separator = normalized.firstIndex(of: "--") ?? normalized.endIndex
            let settings = normalized[..<separator].filter { argument in
                let name = argument.dropFirst(2).prefix(while: { $0 != "=" })
                return !TCPFallbackCommand.processKeys.contains(String(name))
            } + [listener.listen]
            listeners.append(Listener(name: listener.name, command: command, configuration: configuration, settings: settings, backends: configuration.backends))
        }
        return LoadedConfiguration(path: path, process: listeners[0].command, listeners: listeners)
    }

    /// A message of the command line's parser, placed on the line of the key it names: the
    /// listener's own key, else that of `defaults` or the top level, else the listener's name.
    private static func located(_ message: String, in listener: ConfigurationFile.Listener, path: String, commandLine: [String]) -> ConfigurationError {
        // Longest first: "-check-interval" must not be taken for "-check".
        for key in listener.keyLines.keys.sorted(by: { $0.count > $1.count }) where mentions(message, key) {
            // A process-wide key is no listener's.
            let prefix = TCPFallbackCommand.processKeys.contains(key) ? "" : "listener \(listener.name): "
            return ConfigurationError(path: path, line: listener.keyLines[key], key: key, message: prefix + message)
        }
        // A flag given with -config, not in the file: the command line is what is wrong.
        let flags = commandLine.map { String($0.drop(while: { $0 == "-" }).prefix(while: { $0 != "=" })) }
        if let flag = flags.sorted(by: { $0.count > $1.count }).first(where: { mentions(message, $0) }) {
            return ConfigurationError(path: "the command line", line: nil, key: flag, message: message)
        }
        return ConfigurationError(path: path, line: listener.line, key: nil, message: "listener \(listener.name): \(message)")
    }

    /// Whether `message` names the flag `-key` (or `--key`), not a longer flag that starts so.
    private static func mentions(_ message: String, _ key: String) -> Bool {
        var rest = message[...]
        while let range = rest.firstRange(of: "-" + key) {
            let after = rest[range.upperBound...].first
            if after == nil || !(after!.isLetter || after!.isNumber || after! == "-") { return true }
            rest = rest[range.upperBound...]
        }
        return false
    }

    private static func overlaps(_ a: String, _ b: String) -> Bool {
        let wildcards: Set<String> = ["", "0.0.0.0", "::"]
        return a == b || wildcards.contains(a) || wildcards.contains(b)
    }

    /// What `-check-config` prints: each listener in a line.
    var summary: String {
        let lines = listeners.map { listener -> String in
            let c = listener.configuration
            let backends = c.etcd.map { "backends from etcd \($0.prefix)" } ?? "backends \(c.backends.map(\.description).joined(separator: ", "))"
            return "listener \(listener.name): \(listener.command.addresses.first ?? "?"), \(backends), balance \(c.balance.rawValue), check \(c.check.rawValue)"
        }
        return "\(path): \(listeners.count) listener(s)\n" + lines.joined(separator: "\n")
    }
}
