import Synchronization

#if PORTAL_TSAN
#if canImport(Glibc)
import Glibc
#endif

/// A value guarded by a pthread mutex: the lock of ThreadSanitizer builds (`scripts/test
/// --sanitizers`), because ThreadSanitizer does not see the futex inside `Mutex` on Linux and would
/// report every access under it as a race.
///
/// `@unchecked Sendable`: every access to `value` holds `mutex`.
public final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    /// A lock around `value`.
    public init(_ value: Value) {
        self.value = value
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` with the value, holding the lock.
    public func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
#else
/// A value guarded by a lock: `Mutex` (see the ThreadSanitizer build above for why it is named).
public typealias Locked<Value> = Mutex<Value>
#endif
