import NIOCore

/// A SwiftNIO event loop as a task executor: tasks started with it as their preference run
/// there, nonisolated async code included, instead of on Swift's cooperative pool.
final class EventLoopTaskExecutor: TaskExecutor, Sendable {
    private let loop: any EventLoop

    init(loop: any EventLoop) {
        self.loop = loop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
