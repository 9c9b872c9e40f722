import NIOCore

extension NIOLoopBound {
    /// Runs `body` with the value on its event loop: at once when already there (a call's task
    /// usually is), else as the loop's next job.
    func run(_ body: @escaping @Sendable (Value) -> Void) {
        if eventLoop.inEventLoop {
            body(value)
        } else {
            eventLoop.execute { body(self.value) }
        }
    }
}
