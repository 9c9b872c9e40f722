import PortalRPC

/// Lets concurrent requests for the same data share one read, without ever answering a request with
/// data read before it arrived.
///
/// A request with no read of its key under way starts one. A request arriving while a read is under
/// way does not join it (that read may predate the request); it waits for the *next* read, which
/// starts when the current one ends and serves everyone who arrived in the meantime. Under load each
/// key costs at most one backend round at a time, however many callers ask.
actor SharedReads<Key: Hashable & Sendable, Value: Sendable> {
    private var current: [Key: Task<Value, any Error>] = [:]
    private var next: [Key: Task<Value, any Error>] = [:]
    /// Requests waiting for a read, per key.
    private var waiting: [Key: Int] = [:]

    /// The value for `key`, read by `read` after this call began (possibly together with others).
    func value(for key: Key, read: @escaping @Sendable () async throws -> Value) async throws -> Value {
        let task: Task<Value, any Error>
        if let queued = next[key] {
            task = queued
        } else if let running = current[key] {
            task = Task {
                _ = await running.result
                self.promote(key)  // on this actor: the Task inherits its isolation
                return try await read()
            }
            next[key] = task
        } else {
            task = Task { try await read() }
            current[key] = task
        }
        waiting[key, default: 0] += 1
        let result = await Self.waitCancellably(for: task)
        waiting[key] = waiting[key] == 1 ? nil : waiting[key].map { $0 - 1 }
        if current[key] == task { current[key] = nil }
        return try result.get()
    }

    /// How many requests for `key` wait for a read now.
    func waitingCount(for key: Key) -> Int { waiting[key] ?? 0 }

    /// The outcome of `task`, or `CancellationError` as soon as the waiting request is cancelled (its
    /// deadline passed, its client left): a shared read that hangs must not hold a request that has
    /// already been answered. The read itself goes on for the others waiting on it.
    private static func waitCancellably(for task: Task<Value, any Error>) async -> Result<Value, any Error> {
        let waiter = Waiter()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                guard waiter.install(continuation) else { return }
                Task { waiter.resume(with: await task.result) }
            }
        } onCancel: {
            waiter.resume(with: .failure(CancellationError()))
        }
    }

    /// One waiter's continuation, resumed once: by the read's outcome or by cancellation, whichever comes first.
    private final class Waiter: Sendable {
        private let state = Locked<
            (continuation: CheckedContinuation<Result<Value, any Error>, Never>?, outcome: Result<Value, any Error>?)
        >(
            (nil, nil))

        /// Keeps `continuation`; false (having resumed it) when the outcome is already known.
        func install(_ continuation: CheckedContinuation<Result<Value, any Error>, Never>) -> Bool {
            let known = state.withLock { state -> Result<Value, any Error>? in
                if let outcome = state.outcome { return outcome }
                state.continuation = continuation
                return nil
            }
            guard let known else { return true }
            continuation.resume(returning: known)
            return false
        }

        /// Resumes the waiter with `outcome`, unless it was resumed already.
        func resume(with outcome: Result<Value, any Error>) {
            let continuation = state.withLock { state -> CheckedContinuation<Result<Value, any Error>, Never>? in
                guard state.outcome == nil else { return nil }
                state.outcome = outcome
                defer { state.continuation = nil }
                return state.continuation
            }
            continuation?.resume(returning: outcome)
        }
    }

    /// The queued read is about to start: later arrivals queue behind it.
    private func promote(_ key: Key) {
        current[key] = next[key]
        next[key] = nil
    }
}
