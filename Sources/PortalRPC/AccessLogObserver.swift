import Logging

/// Writes one structured log line per call: method, status, duration, request id, peer, organization.
///
/// Never logs metadata values, so tokens and secrets stay out of logs.
public struct AccessLogObserver: ServerCallObserver {
    private let logger: Logger

    /// Creates the observer logging to `logger`.
    public init(logger: Logger) {
        self.logger = logger
    }

    /// Nothing to do until the call ends.
    public func callStarted(_ context: ServerContext) {}

    /// Logs the call's outcome.
    public func callEnded(_ context: ServerContext, error: RPCError?, duration: Duration) {
        guard logger.logLevel <= .info else { return }
        var metadata: Logger.Metadata = [
            "request_id": .string(context.requestID),
            "method": .string(context.method.description),
            "status": .string((error?.code ?? .ok).description),
            "duration_ms": .string(Self.milliseconds(duration)),
            "peer": .string(context.peer),
        ]
        if let organization = context.principal?.organizationID
            ?? context.requestMetadata.firstString(forKey: PrincipalMetadata.organizationID)
        {
            metadata["organization"] = .string(organization)
        }
        // What lies behind an error the caller saw in plain words (an unreachable backend's
        // address, an internal failure), for whoever follows up the request id.
        if let cause = error?.cause { metadata["cause"] = .string(String(describing: cause)) }
        logger.info("rpc", metadata: metadata)
    }

    private static func milliseconds(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let micros = seconds * 1_000_000 + attoseconds / 1_000_000_000_000
        return "\(micros / 1000).\(String(micros % 1000 + 1000).dropFirst())"
    }
}
