/// What replacing one ordered list of backends by another changes: which addresses are new,
/// which are gone and whether the order of those that stay changed. Pure, so the registry
/// only applies it and the tests check it on plain lists.
public struct BackendListChange: Sendable, Equatable {
    /// In the new list, not in the old one, in the new list's order.
    public let added: [Endpoint]
    /// In the old list, not in the new one, in the old list's order.
    public let removed: [Endpoint]
    /// The backends in both lists are in another order.
    public let reordered: Bool
    /// The new list, duplicates dropped (the first place counts).
    public let list: [Endpoint]

    public init(from old: [Endpoint], to new: [Endpoint]) {
        var seen: Set<Endpoint> = []
        let list = new.filter { seen.insert($0).inserted }
        let oldSet = Set(old)
        self.list = list
        self.added = list.filter { !oldSet.contains($0) }
        self.removed = old.filter { !seen.contains($0) }
        self.reordered = old.filter(seen.contains) != list.filter(oldSet.contains)
    }

    /// Nothing to apply.
    public var isEmpty: Bool { added.isEmpty && removed.isEmpty && !reordered }

    /// For the log line: "added A; removed B; new order A, C".
    public var summary: String {
        var parts: [String] = []
        if !added.isEmpty { parts.append("added \(added.map(\.description).joined(separator: ", "))") }
        if !removed.isEmpty { parts.append("removed \(removed.map(\.description).joined(separator: ", "))") }
        if reordered || (!added.isEmpty && list.count > 1) { parts.append("order \(list.map(\.description).joined(separator: ", "))") }
        return parts.joined(separator: "; ")
    }
}
