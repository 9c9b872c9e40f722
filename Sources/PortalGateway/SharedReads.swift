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
        let result = await task.result
        if current[key] == task { current[key] = nil }
        return try result.get()
    }

    /// The queued read is about to start: later arrivals queue behind it.
    private func promote(_ key: Key) {
        current[key] = next[key]
        next[key] = nil
    }
}
