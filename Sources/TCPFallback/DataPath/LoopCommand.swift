import NIOCore
import Synchronization

/// What other threads ask a data loop to do. Commands wait in the loop's mailbox and run on
/// the loop's thread, in order, the next time it wakes.
enum LoopCommand: Sendable {
    /// Close both sides of every relay on the backend with this id.
    case closeSessions(backendID: Int)
    /// Stop accepting and let go of the listening sockets; then call `done`.
    case stopAccepting(done: @Sendable () -> Void)
    /// Close every connection, stop, and call `done` from the loop's last moment.
    case stop(done: @Sendable () -> Void)
    /// Run this (it touches nothing of the loop's; the watchdog's check-in).
    case run(@Sendable () -> Void)
    /// The addresses of a backend's host, resolved for the session of this client socket.
    case resolved(clientFD: Int32, token: UInt32, Result<[SocketAddress], HostResolver.Failure>)
}

/// The commands waiting for one loop, and the eventfd that wakes it.
final class LoopMailbox: Sendable {
    private let commands = Locked<[LoopCommand]>([])
    let wake: WakeSignal

    init() throws(SocketError) {
        wake = try WakeSignal()
    }

    /// The loop is gone and nobody holds the mailbox any more: the eventfd goes too.
    deinit {
        wake.close()
    }

    func post(_ command: LoopCommand) {
        let wasEmpty = commands.withLock { commands in
            commands.append(command)
            return commands.count == 1
        }
        // A wake is pending already when the mailbox was not empty.
        if wasEmpty { wake.signal() }
    }

    /// Everything posted so far, oldest first; called by the loop after it woke.
    func takeAll() -> [LoopCommand] {
        wake.drain()
        return commands.withLock { commands in
            defer { commands = [] }
            return commands
        }
    }
}
