import NIOCore

/// Runs Swift tasks on a NIO event loop, so a connection's calls and its I/O share one thread.
///
/// Calls then cost no thread hops: the stream, the handler task and the nghttp2 session all run on
/// the connection's event loop. Handlers must not block (as on Swift's own executors); blocking work
/// such as database access belongs on a thread pool.
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
