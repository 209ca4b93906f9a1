import TCPFallback

/// What a reload changes in the listeners, from the running configuration to the file's: pure,
/// so that the reloader only applies it and tests check it on plain values.
struct ListenerSetChange: Equatable {
    /// What one listener of either side needs.
    enum Step: Equatable {
        /// New in the file: start it.
        case add(String)
        /// Gone from the file: stop accepting; its open connections finish.
        case remove(String)
        /// Settings changed: start it anew and retire the old one. With the same listen
        /// address the new one serves the old one's sockets, so no client is refused.
        case restart(String, sameSockets: Bool)
        /// Only the backends changed: replace them in place, as etcd does.
        case replaceBackends(String, BackendListChange)
        /// A listener gone and a new one on the same address: the new one serves the old one's
        /// sockets (as a restart does), so no connection waiting to be accepted is lost.
        case rename(from: String, to: String)
    }

    /// One listener as far as a reload is concerned.
    struct Listener: Equatable {
        let name: String
        /// Everything but the backends (flags and the listen address).
        let settings: [String]
        let listen: String
        let backends: [Endpoint]
        /// Its backends come from etcd: the file's are only seeds, and changing them changes nothing.
        let fromEtcd: Bool
    }

    /// In the order to apply them: removals and restarts on another address first (their ports
    /// may be what an added listener binds), then the rest in the file's order.
    let steps: [Step]

    init(from old: [Listener], to new: [Listener]) {
        var first: [Step] = []
        var then: [Step] = []
        var gone = old.filter { listener in !new.contains(where: { $0.name == listener.name }) }
        for listener in new {
            guard let before = old.first(where: { $0.name == listener.name }) else {
                if let index = gone.firstIndex(where: { $0.listen == listener.listen }) {
                    then.append(.rename(from: gone[index].name, to: listener.name))
                    gone.remove(at: index)
                } else {
                    then.append(.add(listener.name))
                }
                continue
            }
            if before.settings != listener.settings {
                let same = before.listen == listener.listen
                if same { then.append(.restart(listener.name, sameSockets: true)) } else { first.append(.restart(listener.name, sameSockets: false)) }
            } else if !listener.fromEtcd {
                let change = BackendListChange(from: before.backends, to: listener.backends)
                if !change.isEmpty { then.append(.replaceBackends(listener.name, change)) }
            }
        }
        steps = gone.map { .remove($0.name) } + first + then
    }

    var isEmpty: Bool { steps.isEmpty }
}
