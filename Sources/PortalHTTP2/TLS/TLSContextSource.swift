import Glibc
import Logging
import Metrics
import PortalRPC
import Synchronization

/// A TLS context that follows its files: rebuilt when the certificate, key or CA files change.
///
/// New connections pick up a rotated certificate (a Kubernetes Secret update, a renewal) within a
/// second; open connections keep the one they started with. A change that does not load (a key
/// written before its certificate) is logged and the last good context stays in use. The certificate's
/// expiry is a metric, `portal_tls_certificate_expiry_timestamp_seconds{role="server"|"client"}`.
public final class TLSContextSource: Sendable {
    private enum Files: Sendable {
        case server(TLSServerSettings)
        case client(TLSClientSettings)
    }

    private struct State: @unchecked Sendable {
        var context: TLSContext
        var stamps: [FileStamp]
        var checkedAt: ContinuousClock.Instant
        var refusedStamps: [FileStamp]?
    }

    private let files: Files
    private let logger: Logger
    private let state: Locked<State>
    private let expiry: Gauge

    private init(files: Files, logger: Logger) throws {
        self.files = files
        self.logger = logger
        let stamps = Self.stamps(of: Self.paths(files))
        let context = try Self.load(files)
        state = Locked(State(context: context, stamps: stamps, checkedAt: .now))
        let role = if case .server = files { "server" } else { "client" }
        expiry = Gauge(label: "portal_tls_certificate_expiry_timestamp_seconds", dimensions: [("role", role)])
        recordExpiry(of: context)
    }

    /// Serves with `settings`; throws a `TLSConfigurationError` naming the file when it cannot.
    public static func server(_ settings: TLSServerSettings, logger: Logger) throws -> TLSContextSource {
        try TLSContextSource(files: .server(settings), logger: logger)
    }

    /// Connects with `settings`; throws a `TLSConfigurationError` naming the file when it cannot.
    public static func client(
        _ settings: TLSClientSettings, logger: Logger = Logger(label: "portal.tls")
    ) throws -> TLSContextSource {
        try TLSContextSource(files: .client(settings), logger: logger)
    }

    /// The context for a new connection, rebuilt first when a file changed (looked at once a second at most).
    func current() -> TLSContext {
        state.withLock { state in
            let now = ContinuousClock.now
            guard now - state.checkedAt >= .seconds(1) else { return state.context }
            state.checkedAt = now
            let stamps = Self.stamps(of: Self.paths(files))
            guard stamps != state.stamps, stamps != state.refusedStamps else { return state.context }
            do {
                state.context = try Self.load(files)
                state.stamps = stamps
                state.refusedStamps = nil
                recordExpiry(of: state.context)
                logger.info(
                    "TLS certificate reloaded", metadata: ["files": "\(Self.paths(files).joined(separator: ", "))"])
            } catch {
                state.refusedStamps = stamps
                logger.error(
                    "TLS files changed but do not load; keeping the previous certificate",
                    metadata: ["error": "\(error)"])
            }
            return state.context
        }
    }

    private func recordExpiry(of context: TLSContext) {
        if let seconds = context.certificateExpiry { expiry.record(seconds) }
    }

    private static func load(_ files: Files) throws -> TLSContext {
        switch files {
        case .server(let settings): try TLSContext.server(settings)
        case .client(let settings): try TLSContext.client(settings)
        }
    }

    private static func paths(_ files: Files) -> [String] {
        switch files {
        case .server(let settings): settings.files
        case .client(let settings): settings.files
        }
    }

    private static func stamps(of paths: [String]) -> [FileStamp] {
        paths.map(FileStamp.init(path:))
    }
}

/// What identifies one version of a file: device, inode, size and modification time (symlinks followed).
struct FileStamp: Hashable, Sendable {
    var device: UInt64 = 0
    var inode: UInt64 = 0
    var size: Int64 = -1
    var modifiedSeconds: Int = 0
    var modifiedNanoseconds: Int = 0

    init(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        modifiedSeconds = info.st_mtim.tv_sec
        modifiedNanoseconds = info.st_mtim.tv_nsec
    }
}
