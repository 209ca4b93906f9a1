/// The listeners one process serves, by name: one from a command line, any number from a
/// configuration file (`-config`). The control socket, the metrics, the stats lines, systemd's
/// status and the watchdog all read it, so a reload that adds or removes a listener reaches
/// them at once.
public final class ListenerSet: Sendable {
    /// One running listener: its proxy (listener, backends, checks, loops) under its name.
    public struct Entry: Sendable {
        public let name: String
        public let proxy: TCPFallbackProxy

        public init(name: String, proxy: TCPFallbackProxy) {
            self.name = name
            self.proxy = proxy
        }
    }

    /// Whether the listeners have names worth showing: true with a configuration file, whose
    /// listeners are named; false for the one listener of a command line, whose output stays
    /// as it always was.
    public let isNamed: Bool
    private let entries = Locked<[Entry]>([])

    public init(isNamed: Bool) {
        self.isNamed = isNamed
    }

    /// The listeners now, in the order of the configuration.
    public var all: [Entry] { entries.withLock { $0 } }

    /// The listener called `name`, if one runs.
    public func entry(named name: String) -> Entry? { entries.withLock { $0.first { $0.name == name } } }

    /// Puts `entry` in place of the listener of the same name (a restart with new settings),
    /// or adds it at the end.
    public func install(_ entry: Entry) {
        entries.withLock { entries in
            if let index = entries.firstIndex(where: { $0.name == entry.name }) {
                entries[index] = entry
            } else {
                entries.append(entry)
            }
        }
    }

    /// Takes the listener called `name` out of the set (it keeps running until shut down).
    @discardableResult
    public func remove(named name: String) -> Entry? {
        entries.withLock { entries in
            guard let index = entries.firstIndex(where: { $0.name == name }) else { return nil }
            return entries.remove(at: index)
        }
    }

    /// Puts the listeners in the order of `names` (those not named keep their place at the end).
    public func order(by names: [String]) {
        entries.withLock { entries in
            entries.sort { (names.firstIndex(of: $0.name) ?? .max) < (names.firstIndex(of: $1.name) ?? .max) }
        }
    }

    /// Client connections open on every listener.
    public var openClientConnections: Int { all.reduce(0) { $0 + $1.proxy.counters.values.openClientConnections } }

    /// Every thread the systemd watchdog should hear from, on every listener.
    public var watchedLoops: [any WatchedLoop] { all.flatMap(\.proxy.watchedLoops) }

}
