import NIOConcurrencyHelpers
import NIOCore

/// What a watch stream's termination must stop: the task that is still connecting and the
/// connection once there is one. Termination (the consumer cancelled or dropped the stream)
/// and connecting race, so both go through this lock: a connection attached after the
/// stream terminated is refused, and its caller closes it.
final class EtcdWatchConnection: Sendable {
    private struct State {
        var task: Task<Void, Never>?
        var channel: (any Channel)?
        var terminated = false
    }

    private let state = NIOLockedValueBox(State())

    init() {}

    /// Remembers the connecting task; cancels it at once if the stream already terminated.
    func attach(task: Task<Void, Never>) {
        let cancel = state.withLockedValue { state -> Bool in
            if state.terminated { return true }
            state.task = task
            return false
        }
        if cancel { task.cancel() }
    }

    /// Remembers the watch's connection; false if the stream already terminated (then the
    /// caller closes the connection itself).
    func attach(channel: any Channel) -> Bool {
        state.withLockedValue { state in
            if state.terminated { return false }
            state.channel = channel
            return true
        }
    }

    /// The stream terminated: stop connecting and close the connection.
    func terminate() {
        let (task, channel) = state.withLockedValue { state in
            state.terminated = true
            defer {
                state.task = nil
                state.channel = nil
            }
            return (state.task, state.channel)
        }
        task?.cancel()
        channel?.close(promise: nil)
    }
}
