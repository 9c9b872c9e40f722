import PortalRPC
import Synchronization

/// Starts each call's handler in a task of its own on its connection's event loop, and counts the
/// handlers running so a server's shutdown can wait for the last one.
///
/// Handlers wait until the server runs (`open()`): the socket is bound earlier, so a port in use is
/// found before anything starts, but nothing is served — health checks included — until the rest
/// of the process is up.
final class ServerCallLauncher: Sendable {
    private struct State {
        var running = 0
        var idleWaiters: [CheckedContinuation<Void, Never>] = []
        var openWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let executor: ServerCallExecutor
    private let state = Locked(State())
    private let isOpen = Atomic(false)

    /// A launcher running calls through `executor` (interceptors, then the route's handler).
    init(executor: ServerCallExecutor) {
        self.executor = executor
    }

    /// Starts `call`'s handler; the task ends the call with the handler's outcome.
    ///
    /// The task is queued on the connection's event loop rather than started inline during the read
    /// that completed the request: the loop then interleaves handlers with other work it was given,
    /// such as registering a newly accepted connection, which keeps new connections quick to answer
    /// while the server is saturated (started inline, the time to a new connection's SETTINGS
    /// doubled under `h2load -c 32 -m 32`).
    func launch(_ call: ServerCall, on taskExecutor: EventLoopTaskExecutor) -> Task<Void, Never> {
        state.withLock { $0.running += 1 }
        return Task(executorPreference: taskExecutor) { [executor] in
            if !self.isOpen.load(ordering: .acquiring) { await self.waitUntilOpen() }
            let error = await executor.execute(call.route, call: RPCServerCall(context: call.context, stream: call))
            call.handlerReturned(error)
            self.finished()
        }
    }

    /// Lets handlers run, those waiting first.
    func open() {
        let waiters = state.withLock { state in
            isOpen.store(true, ordering: .releasing)
            defer { state.openWaiters = [] }
            return state.openWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    // Kept out of line: a continuation inlined here would enlarge the frame every call's task carries.
    @inline(never)
    private func waitUntilOpen() async {
        await withCheckedContinuation { continuation in
            let open = state.withLock { state in
                if isOpen.load(ordering: .acquiring) { return true }
                state.openWaiters.append(continuation)
                return false
            }
            if open { continuation.resume() }
        }
    }

    /// Returns once no handler is running.
    func waitUntilIdle() async {
        await withCheckedContinuation { continuation in
            let idle = state.withLock { state in
                if state.running == 0 { return true }
                state.idleWaiters.append(continuation)
                return false
            }
            if idle { continuation.resume() }
        }
    }

    private func finished() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.running -= 1
            guard state.running == 0 else { return [] }
            defer { state.idleWaiters = [] }
            return state.idleWaiters
        }
        for waiter in waiters { waiter.resume() }
    }
}
