import PortalRPC
import Synchronization

/// Request (or response) messages handed from the event loop to an async reader.
///
/// The event loop pushes; one task pops. `bufferedBytes` and `onConsume` (called after a buffered
/// message is taken) let the transport reopen the HTTP/2 flow-control window only as fast as the
/// reader keeps up.
final class InboundMessageQueue: Sendable {
    private struct State {
        var messages: [[UInt8]] = []
        var head = 0
        var bufferedBytes = 0
        var end: Result<Void, RPCError>?
        var waiter: CheckedContinuation<[UInt8]?, any Error>?
    }

    private let state = Locked(State())
    private let onConsume: (@Sendable () -> Void)?

    init(onConsume: (@Sendable () -> Void)?) {
        self.onConsume = onConsume
    }

    /// Bytes of messages pushed but not yet taken.
    var bufferedBytes: Int { state.withLock { $0.bufferedBytes } }

    /// Adds a message (event loop).
    func push(_ message: [UInt8]) {
        let waiter = state.withLock { state -> CheckedContinuation<[UInt8]?, any Error>? in
            guard state.end == nil else { return nil }
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.messages.append(message)
            state.bufferedBytes += message.count
            return nil
        }
        waiter?.resume(returning: message)
    }

    /// Ends the queue: readers get the buffered messages, then nil (success) or the error.
    func finish(_ result: Result<Void, RPCError>) {
        let waiter = state.withLock { state -> CheckedContinuation<[UInt8]?, any Error>? in
            if state.end == nil { state.end = result }
            defer { state.waiter = nil }
            return state.waiter
        }
        switch result {
        case .success: waiter?.resume(returning: nil)
        case .failure(let error): waiter?.resume(throwing: error)
        }
    }

    /// Ends the queue with an error even if messages are still buffered (cancellation).
    func fail(_ error: RPCError) {
        let waiter = state.withLock { state -> CheckedContinuation<[UInt8]?, any Error>? in
            state.messages.removeAll()
            state.head = 0
            state.bufferedBytes = 0
            state.end = .failure(error)
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(throwing: error)
    }

    /// The next message; nil at a clean end.
    func next() async throws -> [UInt8]? {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[UInt8]?, any Error>) in
            let immediate = state.withLock { state -> Result<[UInt8]?, RPCError>? in
                if state.head < state.messages.count {
                    let message = state.messages[state.head]
                    state.head += 1
                    state.bufferedBytes -= message.count
                    if state.head == state.messages.count {
                        state.messages.removeAll(keepingCapacity: true)
                        state.head = 0
                    }
                    return .success(message)
                }
                if let end = state.end {
                    return end.map { nil }
                }
                state.waiter = continuation
                return nil
            }
            switch immediate {
            case .success(let message)?:
                if message != nil { onConsume?() }
                continuation.resume(returning: message)
            case .failure(let error)?:
                continuation.resume(throwing: error)
            case nil:
                break
            }
        }
    }
}
