import Logging

/// Writes one structured log line per call: method, status, duration, request id, peer, organization.
///
/// Never logs metadata values, so tokens and secrets stay out of logs.
public struct AccessLogInterceptor: ServerInterceptor {
    private let logger: Logger

    /// Creates the interceptor logging to `logger`.
    public init(logger: Logger) {
        self.logger = logger
    }

    /// Runs the call and logs its outcome.
    public func intercept(context: ServerContext, next: @Sendable (ServerContext) async throws -> Void) async throws {
        let start = ContinuousClock.now
        var code = RPCStatusCode.ok
        var cause: (any Error)?
        defer {
            if logger.logLevel <= .info {
                let elapsed = ContinuousClock.now - start
                var metadata: Logger.Metadata = [
                    "request_id": .string(context.requestID),
                    "method": .string(context.method.description),
                    "status": .string(code.description),
                    "duration_ms": .string(Self.milliseconds(elapsed)),
                    "peer": .string(context.peer),
                ]
                if let organization = context.principal?.organizationID ?? context.requestMetadata.firstString(forKey: PrincipalMetadata.organizationID) {
                    metadata["organization"] = .string(organization)
                }
                // What lies behind an error the caller saw in plain words (an unreachable backend's
                // address, an internal failure), for whoever follows up the request id.
                if let cause { metadata["cause"] = .string(String(describing: cause)) }
                logger.info("rpc", metadata: metadata)
            }
        }
        do {
            try await next(context)
        } catch let error as RPCError {
            code = error.code
            cause = error.cause
            throw error
        } catch {
            code = .unknown
            throw error
        }
    }

    private static func milliseconds(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let micros = seconds * 1_000_000 + attoseconds / 1_000_000_000_000
        return "\(micros / 1000).\(String(micros % 1000 + 1000).dropFirst())"
    }
}
