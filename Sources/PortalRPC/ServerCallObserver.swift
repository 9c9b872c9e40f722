/// Watches every call a server handles without taking part in it: told when a call starts and how
/// it ended (access logs, call metrics).
///
/// Unlike a `ServerInterceptor` it cannot refuse or change a call, and it is not `async`: a call runs
/// no deeper for being observed, and an observer cannot hold it up.
public protocol ServerCallObserver: Sendable {
    /// The call is about to run its interceptors and handler.
    func callStarted(_ context: ServerContext)
    /// The call ended after `duration`: `error` is the status the client receives, nil for `OK`.
    func callEnded(_ context: ServerContext, error: RPCError?, duration: Duration)
}
