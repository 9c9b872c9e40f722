import NIOCore

extension NIOLoopBound {
    /// Runs `body` with the value and `argument` on its event loop: at once when already there (a
    /// call's task usually is), else as the loop's next job.
    ///
    /// `body` gets what it works on as `argument` rather than capturing it, so a call site's closure
    /// captures nothing and costs no allocation on the common, immediate path.
    func run<Argument: Sendable>(with argument: Argument, _ body: @escaping @Sendable (Value, Argument) -> Void) {
        if eventLoop.inEventLoop {
            body(value, argument)
        } else {
            eventLoop.execute { body(self.value, argument) }
        }
    }
}
