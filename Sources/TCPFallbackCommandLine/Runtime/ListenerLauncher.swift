import Logging
import TCPFallback

/// Starts one listener: its saved state, its first list of backends, its sockets, its log
/// line. The same steps at start-up and for a listener a reload adds or restarts.
enum ListenerLauncher {
    /// Why a listener did not start; the message names the listener when it has a name.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// - Parameters:
    ///   - name: the listener's name in a configuration file; nil for the command line's one.
    ///   - inherited: listening sockets to serve instead of binding (systemd's, an upgrade's,
    ///     or the sockets of the listener a reload restarts).
    ///   - origin: how the sockets came, for the start-up line (" (socket from systemd)").
    static func start(
        name: String?, configuration original: ProxyConfiguration, listenText: String?, inherited: [Int32], origin: String, timeout: String,
        logger base: Logger
    ) async throws(Failure) -> TCPFallbackProxy {
        var logger = base
        if let name { logger[metadataKey: "listener"] = "\(name)" }
        let prefix = name.map { "listener \($0): " } ?? ""
        // "systemd" and "systemd:NAME" have no address to bind: without a socket passed for
        // them (a second listener naming the same one, or one added by a reload) they cannot run.
        if let listen = listenText, SocketActivation.Selection(placeholder: listen) != nil, inherited.isEmpty {
            throw Failure(description: "\(prefix)the listen address \"\(listen)\" needs a socket from systemd, and none that fits was passed to this process (a reload cannot add one: restart the service)")
        }
        var configuration = original
        configuration.inheritedListeners = inherited
        // The manual failback policy's held backends and etcd's last list, as the last run left them.
        var saved = StateFile.Contents()
        if let path = configuration.failback.stateFile {
            do {
                saved = try StateFile.load(path)
                try StateFile.checkWritable(path)
            } catch {
                throw Failure(description: "\(prefix)\(error)")
            }
        }
        var listOrigin = ""
        if let etcd = configuration.etcd {
            (configuration.backends, listOrigin) = await EtcdBackendSource.startingList(
                settings: etcd, saved: saved.backends, seeds: configuration.backends, logger: logger)
        }
        let proxy = TCPFallbackProxy(configuration: configuration, logger: logger, heldAtStart: saved.held, keptList: saved.backends)
        let address: String
        do {
            let bound = try await proxy.start()
            address = Endpoint(host: bound.ipAddress ?? configuration.listen.host, port: bound.port ?? 0).description
        } catch {
            await proxy.shutdown(grace: .zero)
            throw Failure(description: "\(prefix)\(error)")
        }
        let backends = (configuration.backends.isEmpty ? "none yet" : configuration.backends.map(\.description).joined(separator: ", ")) + listOrigin
        let role = configuration.roles.role == .any ? "" : "; role \(configuration.roles.role.rawValue)"
        let balance = configuration.balance == .first ? "" : "; balance \(configuration.balance.rawValue)"
        logger.notice(
            "tcp-fallback \(TCPFallbackVersion.current) listening on \(address)\(inherited.isEmpty ? "" : origin); \(proxy.dataLoopCount) data loop(s); backends in order: \(backends) (timeout \(timeout), probe delay \(configuration.probeDelay.map(GoDuration.format) ?? "off"))\(role)\(balance)",
            metadata: ["event": "started"])
        for endpoint in saved.held.sorted(by: { $0.description < $1.description }) {
            logger.notice(
                "backend \(endpoint) stays held out of rotation (state file \(configuration.failback.stateFile!)); allow it with: tcp-fallback ctl failback \(name.map { "\($0)/" } ?? "")\(endpoint)",
                metadata: ["backend": "\(endpoint)", "event": "held"])
        }
        return proxy
    }
}
