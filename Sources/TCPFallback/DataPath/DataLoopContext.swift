import Logging

/// What the loops of one proxy share: the registry they read and report to, the listener
/// counters they write (each its own slot), the settings, and the log.
struct DataLoopContext: Sendable {
    let registry: BackendRegistry
    let counters: ProxyCounters
    let settings: DataPathSettings
    let limit: ConnectionLimit?
    let logger: Logger
}
