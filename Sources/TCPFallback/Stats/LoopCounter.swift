import Synchronization

extension Atomic where Value == Int {
    /// Adds `amount` to a counter that only the calling thread writes (its data loop): a
    /// plain load and store, not a read-modify-write, so it costs what an ordinary
    /// increment costs, while readers on other threads still see whole values.
    @inline(__always)
    func addFromOwner(_ amount: Int) {
        store(load(ordering: .relaxed) &+ amount, ordering: .relaxed)
    }
}
