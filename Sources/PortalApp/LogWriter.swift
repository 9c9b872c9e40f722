import Foundation
import NIOConcurrencyHelpers
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Writes log lines to standard error from a thread of its own, so a slow reader of the log (a full
/// pipe to a log collector) never blocks an event loop or a handler. Lines beyond `capacity` bytes
/// waiting are dropped and counted, and the count is logged once the reader catches up.
///
/// `@unchecked Sendable`: the queue is guarded by `queue` (a condition lock), writes by `writing`.
/// (`writing` is a `Mutex` for `withLockIfAvailable`; ThreadSanitizer builds may report it.)
final class LogWriter: @unchecked Sendable {
    /// The process's writer; lines still queued are written when the process exits.
    static let shared: LogWriter = {
        let writer = LogWriter(capacity: 8 << 20)
        // At exit, write what is queued, unless the writer is stuck on a reader that stopped reading.
        atexit { LogWriter.shared.flush() }
        return writer
    }()

    private let capacity: Int
    /// Holds 1 while lines wait, 0 when the queue is empty.
    private let queue = ConditionLock(value: 0)
    private let writing = Mutex(())
    private var lines: [[UInt8]] = []
    private var queuedBytes = 0
    private var dropped = 0

    init(capacity: Int) {
        self.capacity = capacity
        let thread = Thread { [unowned self] in
            while true {
                // Wait for lines without holding `writing`, so `flush()` can always take it.
                self.queue.lock(whenValue: 1)
                self.queue.unlock(withValue: 1)
                self.writing.withLock { _ in self.writeQueued() }
            }
        }
        thread.name = "portal-log-writer"
        thread.start()
    }

    /// Queues one line (with its newline); never blocks on the reader.
    func enqueue(_ line: [UInt8]) {
        queue.lock()
        if queuedBytes + line.count > capacity {
            dropped += 1
            queue.unlock(withValue: lines.isEmpty ? 0 : 1)
            return
        }
        lines.append(line)
        queuedBytes += line.count
        queue.unlock(withValue: 1)
    }

    /// Writes whatever is queued now, on the calling thread (after shutdown, at exit). It waits at
    /// most `patience` for a write in progress, then gives up: a reader that stopped reading must not
    /// keep the process from ending.
    func flush(patience: Duration = .seconds(2)) {
        let deadline = ContinuousClock.now + patience
        while writing.withLockIfAvailable({ _ in writeQueued() }) == nil {
            guard ContinuousClock.now < deadline else { return }
            usleep(10_000)
        }
    }

    /// Takes the queued lines and writes them. Called holding `writing`, so lines leave in the order
    /// they were logged whichever thread writes them.
    private func writeQueued() {
        queue.lock()
        let batch = lines
        let lost = dropped
        lines = []
        queuedBytes = 0
        dropped = 0
        queue.unlock(withValue: 0)
        for line in batch { Self.write(line) }
        if lost > 0 {
            Self.write(
                Array(
                    "{\"level\":\"warning\",\"logger\":\"portal\",\"message\":\"\(lost) log lines dropped: standard error is not read fast enough\"}\n"
                        .utf8))
        }
    }

    private static func write(_ line: [UInt8]) {
        line.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(2, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0, errno == EINTR { continue }
                if written <= 0 { break }
                offset += written
            }
        }
    }
}
