import Synchronization

/// Response streams that never end by themselves (event subscriptions), ended together when their
/// server begins to shut down, so subscribers resume elsewhere at once instead of holding the
/// shutdown until its grace period ends.
public final class LiveStreams: Sendable {
    private struct State {
        var closed = false
        var next = 0
        var waiting: [Int: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = Mutex(State())
    /// What a stream ended by `close()` fails with.
    private let closing: RPCError

    /// Streams that end with UNAVAILABLE and `message` when closed.
    public init(closingMessage message: String) {
        closing = RPCError(.unavailable, message)
    }

    /// Runs the stream `body` until it ends, or until `close()`, which cancels it and throws UNAVAILABLE.
    public func run(_ body: @escaping @Sendable () async throws -> Void) async throws {
        let closing = self.closing
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await body()
                return true
            }
            group.addTask {
                await self.waitForClose()
                return false
            }
            defer { group.cancelAll() }
            // The body's own end (or error) wins over a close that comes after it.
            guard let bodyEnded = try await group.next(), bodyEnded else { throw closing }
        }
    }

    /// Ends every running stream and refuses new ones.
    public func close() {
        let waiting = state.withLock { state in
            state.closed = true
            defer { state.waiting = [:] }
            return state.waiting
        }
        for continuation in waiting.values { continuation.resume() }
    }

    /// Whether `close()` was called.
    public var isClosed: Bool { state.withLock { $0.closed } }

    private func waitForClose() async {
        let id = state.withLock { state in
            state.next += 1
            return state.next
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state in
                    if state.closed || Task.isCancelled { return true }
                    state.waiting[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let continuation = state.withLock { $0.waiting.removeValue(forKey: id) }
            continuation?.resume()
        }
    }
}
