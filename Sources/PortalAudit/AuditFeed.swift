import Synchronization

/// Wakes the event streams of an organization when this instance records events for it. Nothing
/// is queued per stream but a flag: a stream reads what is new from the database at its own pace,
/// so a slow subscriber costs no memory. Events recorded by other instances are found by polling.
final class AuditFeed: Sendable {
    private struct Subscriber {
        let organizationID: String
        /// Set when events were recorded since the stream last looked.
        var pending = false
        var continuation: CheckedContinuation<Void, Never>?
    }

    private let subscribers = Mutex<[Int: Subscriber]>([:])
    private let nextID = Atomic<Int>(0)

    /// One stream's subscription to an organization's recordings; end it with `unsubscribe`.
    struct Subscription: Sendable {
        fileprivate let id: Int
    }

    /// Subscribes a stream to `organizationID`'s recordings.
    func subscribe(to organizationID: String) -> Subscription {
        let id = nextID.add(1, ordering: .relaxed).newValue
        subscribers.withLock { $0[id] = Subscriber(organizationID: organizationID) }
        return Subscription(id: id)
    }

    /// Ends a subscription.
    func unsubscribe(_ subscription: Subscription) {
        subscribers.withLock { $0.removeValue(forKey: subscription.id) }?.continuation?.resume()
    }

    /// Wakes the streams of these organizations (after their events committed).
    func recorded(_ organizationIDs: Set<String>) {
        let woken = subscribers.withLock { subscribers -> [CheckedContinuation<Void, Never>] in
            var woken: [CheckedContinuation<Void, Never>] = []
            for (id, subscriber) in subscribers where organizationIDs.contains(subscriber.organizationID) {
                subscribers[id]?.pending = true
                if let continuation = subscriber.continuation {
                    woken.append(continuation)
                    subscribers[id]?.continuation = nil
                }
            }
            return woken
        }
        for continuation in woken { continuation.resume() }
    }

    /// Clears the subscription's flag before the stream reads what is new, so a recording during
    /// the read wakes the next wait at once.
    func markSeen(_ subscription: Subscription) {
        subscribers.withLock { $0[subscription.id]?.pending = false }
    }

    /// Returns at once when events were recorded since `markSeen`, else when some are, after
    /// `timeout`, or when the task is cancelled.
    func wait(_ subscription: Subscription, timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                        let resumeNow = self.subscribers.withLock { subscribers in
                            guard let subscriber = subscribers[subscription.id], !subscriber.pending, !Task.isCancelled
                            else { return true }
                            subscribers[subscription.id]?.continuation = continuation
                            return false
                        }
                        if resumeNow { continuation.resume() }
                    }
                } onCancel: {
                    let continuation = self.subscribers.withLock { subscribers in
                        defer { subscribers[subscription.id]?.continuation = nil }
                        return subscribers[subscription.id]?.continuation
                    }
                    continuation?.resume()
                }
            }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    /// Streams subscribed now.
    var subscriberCount: Int { subscribers.withLock { $0.count } }
}
