import TCPFallback

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A configuration file (`-config FILE`) as written: YAML whose keys are the command line's
/// flag names, read into one argument list per listener.
///
///     logfile: /var/log/tcp-fallback.log    # process-wide keys: logging, control, metrics, ...
///     control: /run/tcp-fallback.sock
///     defaults:                             # listener keys for every listener
///       timeout: 2s
///     listeners:
///       writer:
///         listen: 127.0.0.1:3306
///         backends: [10.0.0.1:3306, 10.0.0.2:3306]
///
/// YAML because operators already write it by hand (Ansible, Kubernetes, Compose), read by
/// libyaml (`YAMLReader`), which gives the line of every node, so each error names it. This
/// type checks the shape (known keys, one value per key, addresses that parse); what a value
/// means is left to the command line's own parser (`LoadedConfiguration`), so a key means
/// exactly what its flag means.
struct ConfigurationFile {
    /// One listener's keys, as flags, and where each was written.
    struct Listener {
        let name: String
        let line: Int
        /// `-key=value` for each key of the listener (after those of `defaults`), then `--`,
        /// the listen address and the backends.
        let arguments: [String]
        /// The line of each key, the listener's own over `defaults` over the top level.
        let keyLines: [String: Int]
        let listen: String
        let listenLine: Int
    }

    let path: String
    let listeners: [Listener]

    /// Reads and checks the file at `path`.
    static func load(_ path: String) throws(ConfigurationError) -> ConfigurationFile {
        guard let bytes = FileBytes.read(path) else {
            throw ConfigurationError(path: path, line: nil, key: nil, message: "cannot read the file: \(ConnectFailure.errnoText(errno))")
        }
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw ConfigurationError(path: path, line: nil, key: nil, message: "the file is not UTF-8 text")
        }
        return try parse(bytes, path: path)
    }

    /// Checks `bytes`, the contents of the file at `path` (named in errors).
    static func parse(_ bytes: [UInt8], path: String) throws(ConfigurationError) -> ConfigurationFile {
        func fail(_ node: YAMLNode?, _ key: String?, _ message: String) -> ConfigurationError {
            ConfigurationError(path: path, line: node?.line, key: key, message: message)
        }
        let root: YAMLNode?
        do {
            root = try YAMLReader.read(bytes)
        } catch {
            throw ConfigurationError(path: path, line: error.line, key: nil, message: "YAML syntax: \(error.message) (column \(error.column))")
        }
        guard let root, case .mapping(let top, _) = root else {
            throw fail(root, nil, "the file must be a mapping of keys (logfile, control, metrics, ..., defaults, listeners)")
        }
        var processArguments: [String] = []
        var processLines: [String: Int] = [:]
        var defaultArguments: [String] = []
        var defaultLines: [String: Int] = [:]
        var listenersNode: [(key: YAMLNode, value: YAMLNode)]?
        for (keyNode, value) in try pairs(top, path: path) {
            let key = keyNode.string ?? ""
            switch key {
            case "listeners":
                guard case .mapping(let mapping, _) = value else {
                    throw fail(value, key, "must be a mapping of listener names to their keys")
                }
                listenersNode = mapping
            case "defaults":
                guard case .mapping(let mapping, _) = value else {
                    throw fail(value, key, "must be a mapping of listener keys (timeout, check, balance, ...)")
                }
                for (innerKey, innerValue) in try pairs(mapping, path: path) {
                    let name = innerKey.string ?? ""
                    guard TCPFallbackCommand.listenerKeys.contains(name), name != "listen", name != "backends" else {
                        throw fail(innerKey, name, unknownKeyMessage(name, allowed: TCPFallbackCommand.listenerKeys.subtracting(["listen", "backends"]), place: "under defaults"))
                    }
                    defaultArguments.append(try flag(name, innerValue, path: path))
                    defaultLines[name] = innerKey.line
                }
            default:
                guard TCPFallbackCommand.processKeys.contains(key) else {
                    let hint =
                        TCPFallbackCommand.listenerKeys.contains(key)
                        ? "\"\(key)\" is a listener key: put it in a listener, or under defaults for all of them"
                        : unknownKeyMessage(key, allowed: TCPFallbackCommand.processKeys.union(["defaults", "listeners"]), place: "at the top level")
                    throw fail(keyNode, key, hint)
                }
                processArguments.append(try flag(key, value, path: path))
                processLines[key] = keyNode.line
            }
        }
        guard let listenersNode, !listenersNode.isEmpty else {
            throw fail(root, "listeners", "no listeners: the file needs a \"listeners\" mapping with at least one listener")
        }
        var listeners: [Listener] = []
        for (nameNode, value) in try pairs(listenersNode, path: path) {
            let name = nameNode.string ?? ""
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
                throw fail(nameNode, name, "a listener's name must be letters, digits, '-', '_' and '.'")
            }
            guard case .mapping(let mapping, _) = value else {
                throw fail(value, name, "listener \(name) must be a mapping of keys (listen, backends, ...)")
            }
            var arguments: [String] = []
            var lines = processLines.merging(defaultLines) { $1 }
            var listen: (text: String, line: Int)?
            var backends: [String] = []
            for (keyNode, keyValue) in try pairs(mapping, path: path) {
                let key = keyNode.string ?? ""
                let line = keyNode.line
                lines[key] = line
                switch key {
                case "listen":
                    guard case .scalar(let text, _, _) = keyValue, !text.isEmpty else {
                        throw fail(keyValue, "listen", "must be one address, such as 127.0.0.1:3306, :3306 or systemd:NAME")
                    }
                    try checkAddress(text, role: .listen, node: keyValue, key: "listen", path: path)
                    listen = (text, keyValue.line)
                case "backends":
                    let items: [YAMLNode]
                    switch keyValue {
                    case .sequence(let sequence, _): items = sequence
                    case .scalar: items = [keyValue]
                    default: throw fail(keyValue, "backends", "must be a list of addresses, such as [10.0.0.1:3306, 10.0.0.2:3306]")
                    }
                    for item in items {
                        guard case .scalar(let text, _, _) = item, !text.isEmpty else {
                            throw fail(item, "backends", "each backend must be one address, such as 10.0.0.1:3306")
                        }
                        try checkAddress(text, role: .backend, node: item, key: "backends", path: path)
                        backends.append(text)
                    }
                default:
                    guard TCPFallbackCommand.listenerKeys.contains(key) else {
                        let hint =
                            TCPFallbackCommand.processKeys.contains(key)
                            ? "\"\(key)\" is a process-wide key: put it at the top level of the file"
                            : unknownKeyMessage(key, allowed: TCPFallbackCommand.listenerKeys, place: "in a listener")
                        throw fail(keyNode, key, hint)
                    }
                    arguments.append(try flag(key, keyValue, path: path))
                }
            }
            guard let listen else {
                throw fail(nameNode, name, "listener \(name) has no \"listen\" address")
            }
            listeners.append(
                Listener(
                    name: name, line: nameNode.line,
                    arguments: processArguments + defaultArguments + arguments + ["--", listen.text] + backends,
                    keyLines: lines, listen: listen.text, listenLine: listen.line))
        }
        return ConfigurationFile(path: path, listeners: listeners)
    }

    /// The pairs of a mapping, refusing a key given twice (YAML leaves that to the reader).
    private static func pairs(_ mapping: [(key: YAMLNode, value: YAMLNode)], path: String) throws(ConfigurationError) -> [(YAMLNode, YAMLNode)] {
        var seen: [String: Int] = [:]
        var result: [(YAMLNode, YAMLNode)] = []
        for (key, value) in mapping {
            guard case .scalar(let text, _, _) = key else {
                throw ConfigurationError(path: path, line: key.line, key: nil, message: "a key must be a plain word")
            }
            if let first = seen[text] {
                throw ConfigurationError(path: path, line: key.line, key: text, message: "given twice (first on line \(first))")
            }
            seen[text] = key.line
            result.append((key, value))
        }
        return result
    }

    /// A key and its value as one Go-style flag, `-key=value`. A list (of etcd endpoints, say)
    /// is joined with commas, as the flag takes it.
    private static func flag(_ key: String, _ value: YAMLNode, path: String) throws(ConfigurationError) -> String {
        switch value {
        case .scalar(let text, _, let plain):
            if text.isEmpty && plain {
                throw ConfigurationError(path: path, line: value.line, key: key, message: "needs a value")
            }
            // YAML's words for booleans, for the flags that take one.
            if plain, TCPFallbackCommand.booleanFlags.union(TCPFallbackCommand.booleanOptions).contains(key) {
                switch text.lowercased() {
                case "yes", "y", "on": return "-\(key)=true"
                case "no", "n", "off": return "-\(key)=false"
                default: break
                }
            }
            return "-\(key)=\(text)"
        case .sequence(let sequence, _) where key == "etcd":
            var items: [String] = []
            for item in sequence {
                guard case .scalar(let text, _, _) = item else {
                    throw ConfigurationError(path: path, line: item.line, key: key, message: "each etcd endpoint must be one URL")
                }
                items.append(text)
            }
            return "-\(key)=\(items.joined(separator: ","))"
        default:
            throw ConfigurationError(path: path, line: value.line, key: key, message: "takes one value, not a list or a mapping")
        }
    }

    private static func checkAddress(_ text: String, role: Endpoint.Role, node: YAMLNode, key: String, path: String) throws(ConfigurationError) {
        if role == .listen && SocketActivation.Selection(placeholder: text) != nil { return }
        do {
            _ = try Endpoint(parsing: text, role: role)
        } catch {
            throw ConfigurationError(path: path, line: node.line, key: key, message: error.description)
        }
    }

    private static func unknownKeyMessage(_ key: String, allowed: Set<String>, place: String) -> String {
        let close = allowed.filter { $0.hasPrefix(String(key.prefix(3))) }.sorted()
        let suggestion = close.isEmpty ? "" : " (did you mean \(close.joined(separator: ", "))?)"
        return "unknown key \"\(key)\" \(place)\(suggestion); the keys are the command line's flag names, see tcp-fallback --help"
    }
}
