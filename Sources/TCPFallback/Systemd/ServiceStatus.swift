/// The one-line status `systemctl status` shows: which backend new clients go to, how many
/// backends are up, and how many client connections are open.
public enum ServiceStatus {
    public static func describe(_ snapshot: RegistrySnapshot, openConnections: Int) -> String {
        let up = snapshot.backends.filter(\.isUp).count
        let total = snapshot.backends.count
        let connections = "\(openConnections) connection\(openConnections == 1 ? "" : "s")"
        guard let current = snapshot.current else {
            if let refusal = snapshot.refusalReason { return "refusing new clients: \(refusal) (\(up) of \(total) up), \(connections)" }
            return "no backend up (0 of \(total)), \(connections)"
        }
        let group = snapshot.group.map { following in
            " as its group decided (epoch \(following.epoch)\(snapshot.status(of: current)?.isUp == false ? "; seen down here, not by a quorum" : ""))"
        } ?? ""
        return "serving via \(current)\(group) (\(up) of \(total) backend\(total == 1 ? "" : "s") up), \(connections)"
    }

    /// Several named listeners: each one's backend in a few words, then the connections of all.
    public static func describe(_ listeners: [(name: String, snapshot: RegistrySnapshot)], openConnections: Int) -> String {
        let parts = listeners.map { name, snapshot -> String in
            let up = snapshot.backends.filter(\.isUp).count
            let total = snapshot.backends.count
            guard let current = snapshot.current else {
                return "\(name): " + (snapshot.refusalReason.map { "refusing (\($0))" } ?? "no backend up") + " (\(up) of \(total) up)"
            }
            return "\(name): via \(current) (\(up) of \(total) up)"
        }
        let connections = "\(openConnections) connection\(openConnections == 1 ? "" : "s")"
        return (parts.isEmpty ? "no listener" : parts.joined(separator: "; ")) + ", " + connections
    }
}
